"""The launched app, driven through its API with gradio_client (as a script or another Space would).

One server per module (importing the app stack takes a while): launched in-process on 127.0.0.1 with a
free port, its sessions and Gradio cache in a temporary data dir.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import httpx
import pytest

from headshot_lab.ui import ACTIONS


@pytest.fixture(scope="module")
def server(app_server):
    return app_server


def client(url: str, folder: Path):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(folder), analytics_enabled=False)


def session_ids(backend) -> set[str]:
    return {session.id for session in backend.store.list_sessions()}


def test_every_action_is_an_api_endpoint(server, tmp_path):
    url, backend = server
    api = client(url, tmp_path).view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {f"/{name}" for name in ACTIONS}
    assert backend.purge_loop is not None and backend.purge_loop.running


def test_upload_check_retouch_select_export_audit_delete(server, real_photos, tmp_path):
    from gradio_client import handle_file

    from headshot_lab.provenance import read_provenance

    url, backend = server
    api = client(url, tmp_path / "downloads")
    before = session_ids(backend)
    photos = [handle_file(str(real_photos[name])) for name in ("obama", "obama2")]
    status, gallery, report = api.predict(photos, True, api_name="/check_photos")
    assert "2 of 2 photos usable" in status
    assert [entry["caption"] for entry in gallery] == ["✓ obama.jpg", "✓ obama2.jpg"]
    assert [photo["name"] for photo in report["photos"]] == ["obama.jpg", "obama2.jpg"]
    (session_id,) = session_ids(backend) - before
    session = backend.store.get_session(session_id)
    assert sorted(p.name for p in session.uploads.iterdir()) == ["obama.png", "obama2.png"]
    upload_copies = [p for p in Path(os.environ["GRADIO_TEMP_DIR"]).rglob("obama*.jpg")]
    assert upload_copies == [], "Gradio's copies of the uploads must be gone once copied into the session"

    status, retouched = api.predict("office", 0.4, api_name="/retouch")
    assert "2 photo(s) retouched" in status and len(retouched) == 2

    status, candidates, picks = api.predict(5, api_name="/select")
    assert "kept" in status and len(candidates) == 2
    chosen = picks["value"] if isinstance(picks, dict) else picks
    assert chosen, status

    status, archive, files = api.predict(chosen, ["square", "circle"], "png", False, api_name="/export")
    assert "files written" in status and len(files) == 2 * len(chosen)
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        assert sorted(names) == sorted(Path(f).name for f in files)
        bundle.extractall(tmp_path / "unzipped")
    for name in names:  # the disclosure survived the download byte for byte
        provenance = read_provenance(tmp_path / "unzipped" / name, c2pa=False)
        assert provenance["kind"] == "retouched" and provenance["disclosure"]

    card, plots, audit = api.predict(api_name="/audit")
    assert "Audit card" in card and audit["group"].startswith("ITA group") and plots
    assert len(audit["images"]) == 2

    status = api.predict(api_name="/delete_my_data")
    assert "Deleted" in status
    assert session_id not in session_ids(backend)
    assert not backend.publish_dir(session_id).exists()
    status, _, _ = api.predict(5, api_name="/select")
    assert "no session" in status.lower()


def test_a_second_visitor_cannot_reach_the_first_visitors_files(server, real_photos, tmp_path):
    from gradio_client import handle_file

    url, backend = server
    first, second = client(url, tmp_path / "a"), client(url, tmp_path / "b")
    before = session_ids(backend)
    first.predict([handle_file(str(real_photos["obama"]))], True, api_name="/check_photos")
    first.predict("corporate", 0.4, api_name="/retouch")
    (first_id,) = session_ids(backend) - before
    status, gallery, _ = second.predict([handle_file(str(real_photos["biden"]))], True, api_name="/check_photos")
    assert [entry["caption"] for entry in gallery] == ["✓ biden.jpg"]
    (second_id,) = session_ids(backend) - before - {first_id}
    assert second_id != first_id

    # The second visitor sees none of the first's work ...
    status, _, _ = second.predict(5, api_name="/select")
    assert "nothing to select" in status.lower()
    # ... and the first's session files are not served, whoever asks for them.
    session = backend.store.get_session(first_id)
    private = [p for p in session.root.rglob("*") if p.is_file()]
    assert private
    for path in private:
        response = httpx.get(f"{url}gradio_api/file={path}")
        assert response.status_code == 403, path
    # Naming the first visitor's output in an export is refused (it is not among the second's choices).
    first_output = next(p for p in session.outputs.rglob("*.png"))
    with pytest.raises(Exception, match=r"not in the list of choices|not one of your headshots"):
        second.predict([f"retouched/{first_output.name}"], ["square"], "jpeg", False, api_name="/export")
    first.predict(api_name="/delete_my_data")
    second.predict(api_name="/delete_my_data")
    assert not ({first_id, second_id} & session_ids(backend))


def test_bad_input_gets_the_clis_message_and_fix(server, real_photos, tmp_path):
    from gradio_client import handle_file

    url, _backend = server
    api = client(url, tmp_path)
    text = tmp_path / "passport.jpg"
    text.write_text("this is a text file with a photo's name")
    status, _, _ = api.predict([handle_file(str(text))], False, api_name="/check_photos")
    assert "consent" in status.lower()
    status, gallery, report = api.predict([handle_file(str(text))], True, api_name="/check_photos")
    problem = report["photos"][0]["problems"][0]
    assert problem["code"] == "not_an_image"
    assert problem["message"] in status and problem["fix"] in status
    assert problem["message"] in gallery[0]["caption"]
    status, _ = api.predict("corporate", 0.4, api_name="/retouch")
    assert "no session" in status.lower(), "nothing of the refused file was kept"
    api.predict([handle_file(str(real_photos["obama"]))], True, api_name="/check_photos")
    status, _ = api.predict("corporate", 2, -1, "none", "", "", 0, api_name="/generate")
    assert "retouch" in status.lower() and "not set up" in status  # plain words: the setting is for the operator
    assert "HEADSHOT_LAB_BASE_MODEL" not in status
    api.predict(api_name="/delete_my_data")


def swatch_paths(url: str) -> list[str]:
    """The server paths of the style swatches, as any visitor finds them in ``/config``."""
    config = httpx.get(f"{url}config").json()
    found = []
    for component in config["components"]:
        if component.get("props", {}).get("elem_id") == "styles":
            for entry in component["props"]["value"]:
                found.append(entry["image"]["path"])
    return found


def call_raw(url: str, endpoint: str, data: list) -> str:
    """POST an API call the way any script may (paths named directly), then read its answer from the event stream."""
    response = httpx.post(f"{url}gradio_api/call/{endpoint}", json={"data": data}, timeout=60)
    response.raise_for_status()
    event_id = response.json()["event_id"]
    return httpx.get(f"{url}gradio_api/call/{endpoint}/{event_id}", timeout=120).text


def test_a_hostile_call_cannot_delete_the_shared_swatches(server):
    url, backend = server
    swatches = swatch_paths(url)
    assert swatches, "the page shows style swatches"
    urls = [f"{url}gradio_api/file={path}" for path in swatches]
    assert all(httpx.get(u).status_code == 200 for u in urls)
    assert all(backend.upload_root.resolve() not in Path(p).resolve().parents for p in swatches)
    for consent in (False, True):  # without consent the app discards what it is handed; with it, it copies in
        files = [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in swatches[:2]]
        call_raw(url, "check_photos", [files, consent])
        call_raw(url, "delete_my_data", [])
    assert all(Path(path).is_file() for path in swatches)
    assert [httpx.get(u).status_code for u in urls] == [200] * len(urls), "a swatch was deleted for everyone"


def test_every_response_says_nosniff(server, tmp_path):
    url, _backend = server
    for path in ("", "config", "gradio_api/info"):
        response = httpx.get(f"{url}{path}")
        assert response.headers.get("x-content-type-options") == "nosniff", path
    swatch = swatch_paths(url)[0]
    assert httpx.get(f"{url}gradio_api/file={swatch}").headers.get("x-content-type-options") == "nosniff"


def test_refused_uploads_leave_no_copy_on_the_server(server, real_photos, tmp_path):
    from gradio_client import handle_file

    url, backend = server
    api = client(url, tmp_path)
    before = session_ids(backend)
    text = tmp_path / "notes.jpg"
    text.write_text("words, not a photo")
    photo = handle_file(str(real_photos["obama"]))
    status, _, _ = api.predict([photo] * 21, True, api_name="/check_photos")
    assert "you uploaded 21" in status
    status, _, _ = api.predict([photo], False, api_name="/check_photos")
    assert "consent" in status.lower()
    _, _, report = api.predict([handle_file(str(text))], True, api_name="/check_photos")
    assert report["photos"][0]["problems"][0]["code"] == "not_an_image"
    cache = Path(os.environ["GRADIO_TEMP_DIR"])
    left = [p for p in cache.rglob("*") if p.is_file() and p.name in {"obama.jpg", "notes.jpg"}]
    assert left == [], "a refused upload stayed in Gradio's cache"
    assert session_ids(backend) == before, "a request that kept nothing left a session behind"
    assert "Nothing to delete" in api.predict(api_name="/delete_my_data")
