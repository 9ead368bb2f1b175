"""Review states of a team folder (headshot_lab.team.review) and the `team review` command."""

from __future__ import annotations

import json
import threading

import pytest
import yaml
from team_fixture import cli, rerun, tree

from headshot_lab.errors import HeadshotLabError
from headshot_lab.team import review
from headshot_lab.team.layout import TeamLayout
from headshot_lab.train import file_sha256


def set_guide(root, **settings) -> None:
    path = root / "guide.yaml"
    guide = yaml.safe_load(path.read_text())
    guide.update(settings)
    path.write_text(yaml.safe_dump(guide))


# ------------------------------------------------------------------------------------------- states
def test_everyone_starts_pending_and_only_done_people_wait(team):
    states = review.review_state(team)
    assert {pid: e.state for pid, e in states.items()} == dict.fromkeys(["p01", "p02", "p03", "p04"], "pending")
    assert review.pending(team) == ["p01", "p02", "p03"]  # p04 was skipped: nothing to review
    assert not (team / "review.json").exists()  # reading writes nothing


def test_approval_records_time_reviewer_guide_version_and_the_exact_files(team):
    (entry,) = review.approve(team, ["p01"], by="Ana").values()
    assert entry.state == "approved"
    layout = TeamLayout(team)
    status = layout.read_status("p01")
    hashes = {name: file_sha256(layout.person_dir("p01") / name) for name in status.files}
    assert entry.files == hashes
    event = entry.history[-1]
    assert (event.action, event.state, event.by, event.guide_version) == ("approve", "approved", "Ana", "3")
    assert event.files_sha256 == review.files_digest(hashes)
    assert event.at.endswith("Z") and review.parse_time(event.at).year >= 2026
    stored = json.loads((team / "review.json").read_text())
    assert stored["people"]["p01"]["state"] == "approved"
    assert review.review_state(team)["p01"].approved_by == "Ana"
    assert review.pending(team) == ["p02", "p03"]
    assert not [p for p in team.iterdir() if p.name.endswith(".tmp")]


def test_reject_then_rerun_resubmits_then_approve(team, real_photos):
    entry = review.reject(team, "p02", "backdrop too dark", by="Bo")
    assert (entry.state, entry.reason) == ("rejected", "backdrop too dark")
    with pytest.raises(HeadshotLabError) as excinfo:
        review.approve(team, ["p02"])
    assert excinfo.value.code == "invalid_transition"
    rerun(team, "p02", real_photos["obama2"])
    now = review.review_state(team)["p02"]
    assert now.state == "resubmitted" and "re-submitted" in now.note
    assert "p02" in review.pending(team)
    assert review.approve(team, "p02")["p02"].state == "approved"
    actions = [e.action for e in review.review_state(team)["p02"].history]
    assert actions == ["reject", "approve"]


def test_files_changed_after_approval_need_a_new_review(team, real_photos):
    review.approve(team, ["p01", "p03"])
    rerun(team, "p01", real_photos["obama3"])
    states = review.review_state(team)
    assert states["p01"].state == "resubmitted" and "changed after approval" in states["p01"].note
    assert states["p03"].state == "approved"  # untouched files: the approval holds


def test_mark_resubmitted(team):
    review.reject(team, "p03", "glasses glare")
    assert review.mark_resubmitted(team, "p03").state == "resubmitted"
    assert review.review_state(team)["p03"].history[-1].action == "resubmit"
    assert review.approve(team, ["p03"])["p03"].state == "approved"
    # never reviewed: nothing to undo, no event
    assert review.mark_resubmitted(team, "p01").state == "pending"
    assert review.review_state(team)["p01"].history == []


def test_an_approval_can_be_withdrawn_by_a_rejection_but_not_rejected_twice(team):
    review.approve(team, ["p01"])
    assert review.reject(team, "p01", "wrong shirt").state == "rejected"
    with pytest.raises(HeadshotLabError) as excinfo:
        review.reject(team, "p01", "again")
    assert excinfo.value.code == "invalid_transition"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda root: review.approve(root, ["p04"]), "not_reviewable"),
        (lambda root: review.approve(root, ["p01", "nobody"]), "unknown_person"),
        (lambda root: review.approve(root, []), "no_ids"),
        (lambda root: review.approve(root, ["../etc"]), "bad_person_id"),
        (lambda root: review.reject(root, "p01", "  "), "reason_required"),
        (lambda root: review.reject(root, "p04", "no"), "not_reviewable"),
        (lambda root: review.reject(root, "nobody", "no"), "unknown_person"),
        (lambda root: review.mark_resubmitted(root, "nobody"), "unknown_person"),
    ],
)
def test_bad_actions_say_why_and_change_nothing(team, call, code):
    review.approve(team, ["p02"])
    before = tree(team)
    with pytest.raises(HeadshotLabError) as excinfo:
        call(team)
    assert excinfo.value.code == code and excinfo.value.message
    assert tree(team) == before
    assert review.review_state(team)["p01"].state == "pending"  # all or none: p01 was not approved


def test_a_missing_file_cannot_be_approved(team):
    (team / "people/p01/files/p01_square.jpg").unlink()
    with pytest.raises(HeadshotLabError) as excinfo:
        review.approve(team, ["p01"])
    assert excinfo.value.code == "files_missing" and "p01_square.jpg" in excinfo.value.message


def test_not_a_team_folder(tmp_path):
    with pytest.raises(HeadshotLabError) as excinfo:
        review.review_state(tmp_path)
    assert excinfo.value.code == "not_a_team_folder"


# ------------------------------------------------------------------------------------------- sign-offs
def test_required_signoffs_approve_once_every_role_signed(team):
    set_guide(team, sign_off=["hr", "brand"])
    assert review.required_signoffs(team) == ["hr", "brand"]
    for role, code in ((None, "role_required"), ("legal", "unknown_role")):
        with pytest.raises(HeadshotLabError) as excinfo:
            review.approve(team, ["p01"], role=role)
        assert excinfo.value.code == code
    first = review.approve(team, ["p01"], by="Ana", role="HR")["p01"]
    assert first.state == "pending" and [s["role"] for s in first.signoffs] == ["hr"]
    assert "p01" in review.pending(team)
    second = review.approve(team, ["p01"], by="Bo", role="brand")["p01"]
    assert second.state == "approved" and second.approved_by == "Ana (hr); Bo (brand)"


def test_signoffs_do_not_carry_over_to_changed_files(team, real_photos):
    set_guide(team, sign_off=["hr", "brand"])
    review.approve(team, ["p01"], role="hr")
    rerun(team, "p01", real_photos["obama2"])
    review.approve(team, ["p01"], role="brand")
    entry = review.review_state(team)["p01"]
    assert entry.state == "pending" and [s["role"] for s in entry.signoffs] == ["brand"]


# ------------------------------------------------------------------------------------------- concurrency
def test_concurrent_reviewers_lose_no_change(team):
    def approve_many(pid: str) -> None:
        for _ in range(6):
            review.approve(team, [pid], by=pid)

    threads = [threading.Thread(target=approve_many, args=(pid,)) for pid in ("p01", "p02", "p03")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    states = review.review_state(team)
    assert [len(states[pid].history) for pid in ("p01", "p02", "p03")] == [6, 6, 6]


# ------------------------------------------------------------------------------------------- CLI
def test_cli_review_list_approve_reject(team, capsys):
    assert cli(["review", str(team), "--approve", "p01", "p03", "--by", "Ana"]) == 0
    assert cli(["review", str(team), "--reject", "p02", "--reason", "too dark", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["changed"]["p02"]["reason"] == "too dark"
    assert cli(["review", str(team), "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {pid: e["state"] for pid, e in listed["people"].items()} == {
        "p01": "approved",
        "p02": "rejected",
        "p03": "approved",
        "p04": "pending",
    }
    assert listed["pending"] == [] and listed["required_signoffs"] == []
    assert cli(["review", str(team)]) == 0
    assert "p02\trejected\ttoo dark" in capsys.readouterr().out


def test_cli_review_errors(team, tmp_path, capsys):
    before = tree(team)
    with pytest.raises(SystemExit) as excinfo:
        cli(["review", str(team), "--reject", "p02"])
    assert excinfo.value.code == 2 and "--reason" in capsys.readouterr().err
    assert cli(["review", str(team), "--approve", "p04"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: p04 was skipped") and err[1].startswith("fix:") and len(err) == 2
    assert cli(["review", str(tmp_path / "nowhere"), "--list"]) == 1
    assert "not a team output folder" in capsys.readouterr().err
    assert tree(team) == before


def test_a_damaged_review_file_is_said_in_words_and_kept(team):
    (team / "review.json").write_text("{not json")
    before = tree(team)
    for call in (lambda: review.review_state(team), lambda: review.approve(team, ["p01"])):
        with pytest.raises(HeadshotLabError) as excinfo:
            call()
        assert excinfo.value.code == "bad_review_file" and "review.json" in excinfo.value.message
    assert tree(team) == before


def test_files_outside_the_persons_folder_are_never_approved(team):
    layout = TeamLayout(team)
    status = layout.read_status("p01")
    status.files = ["../p02/files/p02_square.jpg"]
    layout.write_status(status)
    with pytest.raises(HeadshotLabError) as excinfo:
        review.approve(team, ["p01"])
    assert excinfo.value.code == "files_outside"


def test_cli_list_says_when_there_is_nothing_to_review_on_one_line(team, capsys):
    """A skipped person reads ``pending`` in the review state, but the list says there is nothing to review and
    why, on the person's one line (a checklist reason spans lines); people with headshots get no such note."""
    layout = TeamLayout(team)
    status = layout.read_status("p04")
    status.reason = "Photo checklist: None of your photos can be used yet.\n- a.jpg: Your face is too blurred."
    layout.write_status(status)
    assert cli(["review", str(team), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    by_id = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert by_id["p04"][1] == "pending"  # the review state itself is unchanged (tools parse it)
    assert by_id["p04"][2] == (
        "nothing to review: skipped (Photo checklist: None of your photos can be used yet. "
        "a.jpg: Your face is too blurred.)"
    )
    assert by_id["p01"] == ["p01", "pending"]  # done, with files: waiting for a review, no note
    assert cli(["export", str(team), "--out", str(team.parent / "dam")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "not exported: p01: pending: waiting for review (not approved yet)" in err
    assert any(line.startswith("not exported: p04: skipped: Photo checklist") and "a.jpg" in line for line in err)
