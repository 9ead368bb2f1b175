"""Faults: a full disk, a killed training run, GPU out of memory, missing weights, no network.

Each fault must end in one clear :class:`~headshot_lab.errors.HeadshotLabError` — an ``ActionResult`` in the app,
``error:``/``fix:`` lines and exit code 1 in the CLI — and leave no half-written file: every writer goes through
:mod:`headshot_lab.atomic` (temp file in the same folder, fsync, rename).

A full disk is simulated by :class:`FullDisk`: below a folder, writes through the handles of ``atomic_write`` and
``os.write`` (appends) succeed until ``free`` bytes are used, then write short and fail with ``ENOSPC``, as the
kernel does. GPU out-of-memory is a ``torch.OutOfMemoryError`` raised by a patched pipeline or UNet; "no network"
is a patched Hub download raising a connection error (nothing here talks to the network).
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab.atomic import (
    append_line,
    atomic_write,
    is_temp_file,
    write_bytes_atomic,
    write_json_atomic,
)
from headshot_lab.errors import DiskFullError, HeadshotLabError, ModelUnavailableError
from headshot_lab.io import save_image

ROOT = Path(__file__).resolve().parents[1]
ENV_BASE = "HEADSHOT_LAB_BASE_MODEL"
HAS_PROC_FDS = Path("/proc/self/fd").is_dir()
needs_proc = pytest.mark.skipif(not HAS_PROC_FDS, reason="FullDisk maps descriptors to paths through /proc/self/fd")

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# -- a disk that fills up --------------------------------------------------------------------------------------------
class _MeteredRaw(io.RawIOBase):
    """A raw file over ``fd`` whose writes go through :meth:`FullDisk.write`."""

    def __init__(self, fd: int, disk: FullDisk) -> None:
        super().__init__()
        self._fd, self._disk = fd, disk

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data) -> int:
        return self._disk.write(self._fd, bytes(data))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class FullDisk:
    """``free`` bytes left for files under ``root`` (whose name passes ``match``); then short writes and ENOSPC."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, root: Path, free: int, match: Callable[[str], bool] = lambda name: True
    ) -> None:
        self.root, self.free, self.match = Path(root).resolve(), int(free), match
        self.failures = 0
        self._write, self._fdopen = os.write, os.fdopen
        monkeypatch.setattr(os, "write", self.write)
        monkeypatch.setattr(os, "fdopen", self.fdopen)

    def metered(self, fd: int) -> bool:
        try:
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            return False
        return path.is_relative_to(self.root) and self.match(path.name)

    def write(self, fd: int, data) -> int:
        if not self.metered(fd):
            return self._write(fd, data)
        if self.free <= 0:
            self.failures += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self._write(fd, bytes(data[: self.free]))  # a short write when the data does not fit
        self.free -= written
        return written

    def fdopen(self, fd: int, mode: str = "r", *args, **kwargs):
        if "w" not in mode or not self.metered(fd):
            return self._fdopen(fd, mode, *args, **kwargs)
        buffered = io.BufferedWriter(_MeteredRaw(fd, self))
        if "b" in mode:
            return buffered
        return io.TextIOWrapper(buffered, encoding=kwargs.get("encoding"), newline=kwargs.get("newline"))


def leftovers(root: Path) -> list[str]:
    """Temporary files or folders anywhere under ``root`` (what a half-done write would leave)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if is_temp_file(p) or p.name.startswith(".tmp-"))


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def portrait(load_real) -> np.ndarray:
    image = Image.fromarray(load_real("obama"))
    image.thumbnail((360, 360))
    return np.asarray(image)


@pytest.fixture(scope="module")
def portrait_face(portrait):
    from headshot_lab.export import find_face

    face = find_face(portrait)
    assert face is not None
    return face


# -- 1. the atomic-write helper ----------------------------------------------------------------------------------------
def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "a" / "data.bin"
    write_bytes_atomic(target, b"old")  # the folder is created
    with pytest.raises(ValueError), atomic_write(target) as handle:
        handle.write(b"half of the new")
        raise ValueError("encoder failed")
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as handle:
        handle.write(b"x" * 100_000)
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []
    with atomic_write(target, "w", encoding="utf-8") as handle:
        handle.write("ΔITA\n")
    assert target.read_text(encoding="utf-8") == "ΔITA\n"


def test_atomic_files_get_the_usual_permissions_or_the_given_ones(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    plain = write_bytes_atomic(tmp_path / "plain", b"x")
    private = write_bytes_atomic(tmp_path / "private", b"x", file_mode=0o600)
    assert plain.stat().st_mode & 0o777 == 0o666 & ~umask
    assert private.stat().st_mode & 0o777 == 0o600


def test_json_is_utf8_with_a_final_newline(tmp_path):
    path = write_json_atomic(tmp_path / "r.json", {"group": "ITA Ⅵ", "n": 2})
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and "Ⅵ" in text and json.loads(text) == {"group": "ITA Ⅵ", "n": 2}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_and_quota_become_one_clear_error(tmp_path, monkeypatch, code):
    write_bytes_atomic(tmp_path / "keep.txt", b"kept")

    def no_space(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFullError) as info:
        write_bytes_atomic(tmp_path / "keep.txt", b"new content")
    error = info.value
    assert error.code == "disk_full" and isinstance(error, HeadshotLabError)
    assert str(tmp_path) in error.message and "keep.txt" in error.message and "free" in error.message
    assert "disk space" in error.fix
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == code
    assert contents(tmp_path) == {"keep.txt": b"kept"}


@pytest.mark.parametrize(("free", "disk_full"), [(0, True), (10**9, False)])
def test_an_errno_less_write_error_counts_as_disk_full_only_when_no_space_is_left(
    tmp_path, monkeypatch, free, disk_full
):
    import headshot_lab.atomic as atomic

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: usage._replace(free=free))
    expected = DiskFullError if disk_full else OSError
    with pytest.raises(expected) as info, atomic_write(tmp_path / "a.npy") as handle:
        handle.write(b"\x93NUMPY")
        raise OSError("1048576 requested and 4096 written")  # numpy's tofile: no errno
    assert isinstance(info.value, DiskFullError) is disk_full
    assert leftovers(tmp_path) == []


def test_other_os_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    def denied(fd):
        raise PermissionError(errno.EACCES, "denied")

    monkeypatch.setattr(os, "fsync", denied)
    with pytest.raises(PermissionError):
        write_bytes_atomic(tmp_path / "x", b"1")
    assert leftovers(tmp_path) == []


@needs_proc
def test_append_line_is_all_or_nothing(tmp_path, monkeypatch):
    log = tmp_path / "manifest.jsonl"
    append_line(log, json.dumps({"i": 0}))
    append_line(log, json.dumps({"i": 1}) + "\n")  # a trailing newline is not doubled
    before = log.read_bytes()
    assert before == b'{"i": 0}\n{"i": 1}\n'
    disk = FullDisk(monkeypatch, tmp_path, free=5)  # room for 5 bytes of the next line
    with pytest.raises(DiskFullError):
        append_line(log, json.dumps({"i": 2, "payload": "x" * 50}))
    assert log.read_bytes() == before  # the 5 bytes that made it were cut off again
    assert disk.free == 0


# -- 2. a full disk during export, save_image and generation -------------------------------------------------------
@needs_proc
def test_save_image_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch, portrait):
    target = save_image(portrait, tmp_path / "photo.png")
    before = target.read_bytes()
    disk = FullDisk(monkeypatch, tmp_path, free=len(before) // 3)
    with pytest.raises(DiskFullError) as info:
        save_image(portrait[::-1], target)
    with pytest.raises(DiskFullError):
        save_image(portrait, tmp_path / "new.jpg")
    assert str(tmp_path) in info.value.message
    assert disk.failures >= 2
    assert contents(tmp_path) == {"photo.png": before}  # no temp file, no partial new.jpg


@needs_proc
def test_export_on_a_full_disk_keeps_what_was_written_whole(tmp_path, monkeypatch, portrait, portrait_face):
    from headshot_lab.export import export_headshots
    from headshot_lab.provenance import read_provenance

    crops = ["square", "circle", "banner"]
    dry = export_headshots(portrait, tmp_path / "dry", crops, format="png", face=portrait_face, zip_name="all.zip")
    sizes = [path.stat().st_size for path in dry.paths]
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier_square.jpg").write_bytes(b"an earlier export")
    disk = FullDisk(monkeypatch, out, free=sizes[0] + sizes[1] // 2)  # the second file runs out of space
    with pytest.raises(DiskFullError) as info:
        export_headshots(portrait, out, crops, format="png", face=portrait_face, zip_name="all.zip")
    assert info.value.code == "disk_full" and str(out) in info.value.message
    assert disk.failures >= 1
    assert leftovers(out) == []
    first = dry.paths[0].name
    assert sorted(p.name for p in out.iterdir()) == sorted(["earlier_square.jpg", first])  # no partial file, no zip
    assert (out / "earlier_square.jpg").read_bytes() == b"an earlier export"
    with Image.open(out / first) as written, Image.open(dry.paths[0]) as reference:
        np.testing.assert_array_equal(np.asarray(written), np.asarray(reference))  # whole, decodable
    assert read_provenance(out / first, c2pa=False)["kind"] == "generated"  # and still labelled


@pytest.fixture()
def backend(tmp_path):
    """The app's backend on a private data folder (its purge thread stopped afterwards)."""
    from headshot_lab.privacy import SessionStore
    from headshot_lab.ui import AppBackend

    gradio = tmp_path / "app" / "gradio"
    gradio.mkdir(parents=True)
    app = AppBackend(
        SessionStore(tmp_path / "app" / "data", ttl_hours=24), publish_root=gradio / "published", upload_root=gradio
    )
    yield app
    app.stop()


def session_with_outputs(backend, portrait: np.ndarray | None = None, count: int = 2):
    """A live session whose outputs are ``count`` labelled copies of ``portrait``, all picked."""
    from headshot_lab.provenance import save_with_provenance
    from headshot_lab.ui import SessionState
    from headshot_lab.ui.state import Item

    state = SessionState()
    session = backend.open_session(state, create=True)
    for index in range(count if portrait is not None else 0):
        name = f"generated/shot-{index}.png"
        path = save_with_provenance(portrait, session.outputs / name, "generated", format="PNG")
        state.outputs.append(Item(name=name, path=str(path), kind="generated"))
    state.picks = [item.name for item in state.outputs]
    return state, session


@needs_proc
def test_app_export_on_a_full_disk_is_a_message_and_loses_nothing(backend, monkeypatch, portrait):
    state, session = session_with_outputs(backend, portrait)
    first = backend.export(state, crops=["square"], format="png")
    assert first.ok, first.status
    before = contents(session.root)
    published = contents(backend.publish_root)
    disk = FullDisk(monkeypatch, session.root, free=30_000)  # less than one exported PNG
    second = backend.export(state, crops=["square", "circle"], format="png")
    assert not second.ok and second.error["code"] == "disk_full"
    assert "disk is full" in second.status and "disk space" in second.status
    assert disk.failures >= 1
    after = contents(session.root)
    assert {name: after.get(name) for name in before} == before  # picks, session file, the first export: intact
    assert contents(backend.publish_root) == published
    assert leftovers(session.root) == [] and leftovers(backend.publish_root) == []
    monkeypatch.undo()  # space freed: the next export works
    assert backend.export(state, crops=["square"], format="png").ok


@pytest.fixture(scope="module")
def sd15(tiny_bases) -> Path:
    return Path(tiny_bases["sd15"])


@pytest.fixture(scope="module")
def generator(sd15):
    from headshot_lab.generate import HeadshotGenerator

    return HeadshotGenerator(str(sd15), progress=False)


@needs_proc
def test_generation_on_a_full_disk_keeps_images_and_manifest_in_step(tmp_path, monkeypatch, generator):
    from headshot_lab.generate import MANIFEST_NAME, read_manifest

    out = tmp_path / "shots"
    generator(None, "corporate", n=1, seed=0, out_dir=out, steps=2)
    manifest = (out / MANIFEST_NAME).read_bytes()
    first = (out / "headshot-0000.png").read_bytes()
    with monkeypatch.context() as patch:  # the line does not fit: it never lands, and its image is removed
        FullDisk(patch, out, free=len(manifest) // 2, match=lambda name: name == MANIFEST_NAME)
        with pytest.raises(DiskFullError):
            generator(None, "corporate", n=1, seed=1, out_dir=out, steps=2)
    with monkeypatch.context() as patch:  # the image does not fit: no image, no line
        FullDisk(patch, out, free=100, match=lambda name: ".png" in name)
        with pytest.raises(DiskFullError):
            generator(None, "corporate", n=1, seed=2, out_dir=out, steps=2)
    assert (out / MANIFEST_NAME).read_bytes() == manifest
    assert sorted(p.name for p in out.iterdir()) == ["headshot-0000.png", MANIFEST_NAME]
    assert (out / "headshot-0000.png").read_bytes() == first
    resumed = generator(None, "corporate", n=1, seed=3, out_dir=out, steps=2)  # space again: numbering goes on
    assert [p.name for p in resumed.images] == ["headshot-0001.png"]
    assert [r["file"] for r in read_manifest(out)] == ["headshot-0000.png", "headshot-0001.png"]


# -- 3. a killed training run, resumed ---------------------------------------------------------------------------------
TRAIN_CHILD = """
import sys, time
import numpy as np, torch
from headshot_lab.train import TrainConfig, train_identity_lora
torch.set_num_threads(1)
base, out, steps, *photos = sys.argv[1:]
config = TrainConfig(steps=int(steps), rank=4, learning_rate=1e-3, prior_preservation=False, face_crop=False,
                     checkpoint_every=2, seed=0)
train_identity_lora([np.load(p) for p in photos], base, out, config, progress=False,
                    callback=lambda step, loss: time.sleep(1.0))
"""


def train_config(steps: int):
    from headshot_lab.train import TrainConfig

    return TrainConfig(
        steps=steps, rank=4, learning_rate=1e-3, prior_preservation=False, face_crop=False, checkpoint_every=2, seed=0
    )


@pytest.fixture(scope="module")
def small_photos(load_real) -> list[np.ndarray]:
    return [np.asarray(Image.fromarray(load_real(name)).resize((64, 64))) for name in ("obama", "obama2", "obama3")]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.timeout(300)
def test_training_killed_after_a_checkpoint_resumes_from_it(tmp_path, sd15, small_photos):
    import torch
    from safetensors.torch import load_file

    from headshot_lab.train import LORA_WEIGHT_NAME, train_identity_lora

    steps = 12
    files = []
    for index, pixels in enumerate(small_photos):
        np.save(tmp_path / f"photo-{index}.npy", pixels)
        files.append(str(tmp_path / f"photo-{index}.npy"))
    out = tmp_path / "lora"
    checkpoints = out / "checkpoints"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    log = tmp_path / "child.log"
    with open(log, "wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", TRAIN_CHILD, str(sd15), str(out), str(steps), *files],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 240
        while not (checkpoints / "step-000002" / "state.pt").is_file():
            assert child.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert not (out / LORA_WEIGHT_NAME).exists()
    saved = sorted(p.name for p in checkpoints.glob("step-*"))
    last = int(saved[-1].removeprefix("step-"))
    assert 2 <= last < steps
    # What a kill at a worse moment (or a power cut) leaves: a half-written checkpoint folder, a temp file of the
    # final LoRA, and a newer checkpoint whose state was cut short. None of them may be picked up.
    half = checkpoints / ".tmp-step-000010"
    half.mkdir(exist_ok=True)
    (half / "state.pt").write_bytes(b"PK\x03\x04 half")
    (out / f".{LORA_WEIGHT_NAME}.0badc0de.tmp").write_bytes(b"half a LoRA")
    damaged = checkpoints / "step-000011"
    shutil.copytree(checkpoints / saved[-1], damaged)
    state = (damaged / "state.pt").read_bytes()
    (damaged / "state.pt").write_bytes(state[: len(state) // 2])

    resumed = train_identity_lora(small_photos, str(sd15), out, train_config(steps), progress=False)
    assert resumed.resumed_from == last  # from the newest intact checkpoint: not from 0, not from the damaged one
    assert resumed.card["resumed_from_step"] == last and resumed.steps == steps and len(resumed.losses) == steps
    assert leftovers(out) == []
    assert not damaged.exists()
    straight = train_identity_lora(small_photos, str(sd15), tmp_path / "straight", train_config(steps), progress=False)
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-5)  # steps ≤ last came from the checkpoint
    a, b = load_file(str(resumed.lora_path)), load_file(str(straight.lora_path))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


# -- 4. GPU out of memory (simulated) ----------------------------------------------------------------------------------
def out_of_memory(*args, **kwargs):
    import torch

    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB (GPU 0; 8.00 GiB total capacity)")


def assert_out_of_memory_error(error: HeadshotLabError) -> None:
    assert error.code == "out_of_memory" and "GPU memory" in error.message
    for what in ("batch size", "resolution", "offload"):
        assert what in error.fix


def test_out_of_memory_mid_batch_keeps_the_finished_images_and_their_lines(tmp_path, monkeypatch, generator):
    from headshot_lab.generate import MANIFEST_NAME, read_manifest

    assert generator.speed.batch_size == 1  # one pipeline call per image
    pipe_class = type(generator.load())
    real_call = pipe_class.__call__
    calls = []

    def second_call_fails(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            out_of_memory()
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(pipe_class, "__call__", second_call_fails)
    with pytest.raises(HeadshotLabError) as info:
        generator(None, "corporate", n=3, seed=0, out_dir=tmp_path, steps=2)
    assert_out_of_memory_error(info.value)
    assert "generating 1 image" in info.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["headshot-0000.png", MANIFEST_NAME]
    assert [r["file"] for r in read_manifest(tmp_path)] == ["headshot-0000.png"]


def test_out_of_memory_in_training_keeps_the_last_checkpoint(tmp_path, monkeypatch, sd15, small_photos):
    from diffusers import UNet2DConditionModel

    from headshot_lab.train import LORA_WEIGHT_NAME, train_identity_lora

    real_forward = UNet2DConditionModel.forward
    calls = []

    def third_step_fails(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            out_of_memory()
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", third_step_fails)
    out = tmp_path / "lora"
    with pytest.raises(HeadshotLabError) as info:
        train_identity_lora(small_photos, str(sd15), out, train_config(4), progress=False)
    assert_out_of_memory_error(info.value)
    assert "training" in info.value.message
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002"]
    assert not (out / LORA_WEIGHT_NAME).exists() and leftovers(out) == []
    monkeypatch.undo()
    resumed = train_identity_lora(small_photos, str(sd15), out, train_config(4), progress=False)
    assert resumed.resumed_from == 2


@pytest.fixture(scope="module")
def lora_file(sd15, tmp_path_factory) -> Path:
    from headshot_lab.testing.tiny import tiny_lora

    return tiny_lora(sd15, tmp_path_factory.mktemp("lora"))


def test_out_of_memory_in_the_app_is_a_message(backend, monkeypatch, sd15, lora_file):
    import diffusers

    state, session = session_with_outputs(backend)
    state.identity = {"mode": "lora", "path": str(lora_file)}
    monkeypatch.setenv(ENV_BASE, str(sd15))
    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "__call__", out_of_memory)
    result = backend.generate(state, "corporate", 2, seed=0, steps=2)
    assert not result.ok and result.error["code"] == "out_of_memory"
    assert "GPU memory" in result.status and "batch size" in result.status
    assert not any(p.suffix == ".png" for p in session.outputs.rglob("*"))
    assert not any(p.name == "manifest.jsonl" and p.read_text().strip() for p in session.outputs.rglob("*"))


# -- 5. missing weights, no network -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broken_bases(sd15, tmp_path_factory) -> dict[str, str]:
    """``HEADSHOT_LAB_BASE_MODEL`` values that cannot work, by case."""
    root = tmp_path_factory.mktemp("broken")
    (root / "empty").mkdir()
    corrupt = root / "corrupt"
    shutil.copytree(sd15, corrupt)
    weights = corrupt / "unet" / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # an interrupted copy
    return {
        "missing_path": str(root / "not-there"),
        "empty_folder": str(root / "empty"),
        "corrupt_weights": str(corrupt),
        "hub_id_not_cached": "headshot-lab-tests/not-in-any-cache",
    }


CASES = ["missing_path", "empty_folder", "corrupt_weights", "hub_id_not_cached"]


def assert_names_the_setting(error: ModelUnavailableError, value: str) -> None:
    assert error.code == "model_unavailable"
    assert f"{ENV_BASE}={value}" in error.message  # which setting, with which value
    assert ENV_BASE in error.fix and "tiny-model" in error.fix


@pytest.mark.parametrize("case", CASES)
def test_unusable_base_model_is_one_clear_error(case, broken_bases, monkeypatch, tmp_path, capsys, lora_file, backend):
    import headshot_lab.cli as cli
    from headshot_lab.generate import HeadshotGenerator

    value = broken_bases[case]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(ENV_BASE, value)
    with pytest.raises(ModelUnavailableError) as info:
        HeadshotGenerator(None, progress=False).load()
    assert_names_the_setting(info.value, value)

    out = tmp_path / "cli-out"
    assert cli.main(["generate", "--style", "corporate", "-n", "1", "--out", str(out), "--steps", "2"]) == 1
    err = capsys.readouterr().err
    assert f"error: No base diffusion model is available ({ENV_BASE}={value}" in err
    assert f"fix: Set {ENV_BASE}" in err and "Traceback" not in err
    assert not out.exists() or not any(out.rglob("*.png"))

    state, _ = session_with_outputs(backend)
    state.identity = {"mode": "lora", "path": str(lora_file)}
    result = backend.generate(state, "corporate", 1, seed=0, steps=2)
    assert not result.ok and result.error["code"] == "model_unavailable"
    assert f"`{ENV_BASE}`" in result.status and "retouch" in result.status.lower()


def test_training_on_corrupt_weights_is_the_same_error(broken_bases, monkeypatch, tmp_path, small_photos):
    from headshot_lab.train import train_identity_lora

    monkeypatch.setenv(ENV_BASE, broken_bases["corrupt_weights"])
    with pytest.raises(ModelUnavailableError) as info:
        train_identity_lora(small_photos, None, tmp_path / "lora", train_config(2), progress=False)
    assert_names_the_setting(info.value, broken_bases["corrupt_weights"])
    assert "diffusion_pytorch_model.safetensors" in info.value.message  # which file is damaged
    assert not (tmp_path / "lora").exists()


@pytest.mark.slow  # a whole CLI process (~20 s of imports); the in-process CLI check above runs by default
@pytest.mark.timeout(240)
def test_command_line_process_prints_no_traceback(broken_bases, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), ENV_BASE: broken_bases["corrupt_weights"]}
    command = [sys.executable, "-m", "headshot_lab", "generate", "-n", "1", "--out", str(tmp_path / "o")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=230)
    assert done.returncode == 1
    assert "error: No base diffusion model is available" in done.stderr and f"fix: Set {ENV_BASE}" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def connection_errors():
    import httpx
    import requests

    return [
        httpx.ConnectError("[Errno 101] Network is unreachable"),
        requests.ConnectionError(
            "Failed to establish a new connection: [Errno -3] Temporary failure in name resolution"
        ),
        httpx.ConnectTimeout("timed out"),
    ]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("index", range(3))
def test_no_network_is_a_clear_message_not_a_hang(index, monkeypatch):
    import huggingface_hub

    from headshot_lab.models import locate_base

    error = connection_errors()[index]
    calls = []

    def refuse(*args, **kwargs):
        calls.append(kwargs.get("local_files_only"))
        if kwargs.get("local_files_only"):
            from huggingface_hub.errors import LocalEntryNotFoundError

            raise LocalEntryNotFoundError("not in the cache")
        raise error

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    with pytest.raises(ModelUnavailableError) as info:
        locate_base("stable-diffusion-v1-5/stable-diffusion-v1-5")
    assert calls == [True, None]  # the cache first, then one download attempt
    assert "could not be downloaded" in info.value.message and "network" in info.value.message
    assert type(error).__name__ in info.value.message
    assert "HF_HUB_OFFLINE" not in info.value.message  # it is not set: the message must not blame it


def fake_hub_cache(root: Path, repo: str, source: Path | None) -> Path:
    """A Hub cache entry for ``repo`` holding all of ``source`` or (``None``) only a ``model_index.json``."""
    owner, name = repo.split("/")
    entry = root / f"models--{owner}--{name}"
    snapshot = entry / "snapshots" / ("0" * 40)
    if source is not None:
        shutil.copytree(source, snapshot)
    else:
        snapshot.mkdir(parents=True)
        index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}
        (snapshot / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text("0" * 40)
    return snapshot


@pytest.mark.timeout(120)
def test_a_cached_hub_model_loads_without_network_and_a_partial_one_says_why(tmp_path, monkeypatch, sd15):
    import httpx
    import huggingface_hub
    import huggingface_hub.constants
    from diffusers import DiffusionPipeline

    from headshot_lab.models import load_pipeline, load_training_components, locate_base

    downloads = []

    def no_network(*args, **kwargs):
        downloads.append(args[:1])
        raise httpx.ConnectError("[Errno 101] Network is unreachable")

    real_download = huggingface_hub.hf_hub_download

    def cache_only(*args, **kwargs):
        if not kwargs.get("local_files_only"):
            no_network(*args)
        return real_download(*args, **kwargs)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", cache_only)
    monkeypatch.setattr(DiffusionPipeline, "download", classmethod(no_network))
    fake_hub_cache(tmp_path, "someone/cached", sd15)
    fake_hub_cache(tmp_path, "someone/partial", None)

    located = locate_base("someone/cached")
    assert located.source == "someone/cached" and located.family == "sd15"
    pipe, _ = load_pipeline(located)
    parts = load_training_components(located)
    assert type(pipe).__name__ == "StableDiffusionPipeline" and "unet" in parts
    assert downloads == []  # everything came from the cache, not one network attempt

    with pytest.raises(ModelUnavailableError) as info:
        load_pipeline(locate_base("someone/partial"))
    assert downloads  # the missing files were asked for ...
    assert "someone/partial" in info.value.message  # ... and their absence is one clear error
    assert ENV_BASE in info.value.fix
