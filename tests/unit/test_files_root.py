"""The files root: what FolderParam / FileParam accept, what walk() yields and skips."""

import os

import pytest

from app import create_app
from tasks.pipelines import files


@pytest.fixture
def root(tmp_path, monkeypatch):
    root = tmp_path / "files"
    (root / "photos" / "2026").mkdir(parents=True)
    (root / "photos" / "2026" / "a.jpg").write_bytes(b"x")
    (root / "notes").mkdir()
    (root / "notes" / "会议.md").write_text("会议")
    (root / ".hidden").mkdir()
    (tmp_path / "secret.txt").write_text("no")
    os.symlink(tmp_path / "secret.txt", root / "notes" / "out.txt")  # a file link leading out
    os.symlink(tmp_path, root / "photos" / "outside")  # a folder link leading out
    os.symlink(root / "notes", root / "photos" / "notes-again")  # a folder link inside
    os.symlink(root / "notes" / "会议.md", root / "photos" / "meeting.md")  # a file link inside
    monkeypatch.setenv(files.ROOT_ENV, str(root))
    return root


def test_paths_resolve_inside_the_root_or_are_refused(root):
    assert files.resolve("photos/2026") == root / "photos" / "2026"
    assert files._folder("photos/../notes") == "notes"  # stored normalised, relative
    assert files._folder(".") == "."
    assert files._file("photos/meeting.md") == "notes/会议.md"  # a link inside: where it leads
    for outside in ("..", "/etc", "photos/outside", "notes/out.txt", "photos/../../x"):
        with pytest.raises(ValueError, match="outside the files root"):
            files.resolve(outside)
    with pytest.raises(ValueError, match="not a folder"):
        files._folder("notes/会议.md")
    with pytest.raises(ValueError, match="not a file"):
        files._file("notes")


def test_walk_yields_files_in_order_and_reports_links_that_lead_out(root):
    skipped = []
    found = [p.relative_to(root).as_posix() for p in files.walk(root, skipped.append)]
    # Linked folders are never followed; a linked file inside the root is kept.
    assert found == ["notes/会议.md", "photos/meeting.md", "photos/2026/a.jpg"]
    assert sorted(p.relative_to(root).as_posix() for p in skipped) == [
        "notes/out.txt",
        "photos/outside",
    ]


def test_the_form_suggests_folders_and_files_but_not_hidden_or_linked_ones(root):
    assert files.suggestions("taskdeck-folder") == [".", "notes", "photos", "photos/2026"]
    assert "notes/会议.md" in files.suggestions("taskdeck-file")


def test_without_a_root_every_path_is_refused_and_nothing_is_suggested(monkeypatch):
    monkeypatch.delenv(files.ROOT_ENV, raising=False)
    with pytest.raises(ValueError, match="no files root"):
        files.resolve("anything")
    assert files.suggestions("taskdeck-folder") == []


def test_a_link_swapped_in_after_the_walk_is_caught_on_the_open_file(root, tmp_path):
    note = root / "notes" / "会议.md"
    found = list(files.walk(root / "notes", lambda path: None))
    assert note in found
    note.unlink()
    os.symlink(tmp_path / "secret.txt", note)  # swapped between the walk and the read
    with pytest.raises(ValueError, match="outside the files root"):
        files.open_inside(note)
    os.mkfifo(root / "notes" / "pipe")  # would block a plain open() for ever
    with pytest.raises(ValueError, match="not a regular file"):
        files.open_inside(root / "notes" / "pipe")
    os.symlink(root / "photos" / "2026" / "a.jpg", root / "notes" / "alias.jpg")
    with files.open_inside(root / "notes" / "alias.jpg") as fh:  # a link inside is fine
        assert fh.read() == b"x"


def test_paths_that_cannot_resolve_are_refused_not_crashes(root):
    os.symlink("loop", root / "loop")
    for bad in ("loop", "x" * 300, "notes/" + "y" * 300):
        with pytest.raises(ValueError):
            files._folder(bad)
    skipped = []
    list(files.walk(root, skipped.append))
    assert root / "loop" in skipped  # a link that cannot resolve counts as leading out


def test_a_files_root_that_holds_the_data_dir_stops_start_up(tmp_path):
    settings = {"TESTING": True, "DATA_DIR": str(tmp_path / "data"), "FILES_ROOT": str(tmp_path)}
    with pytest.raises(RuntimeError, match="must not hold the data dir"):
        create_app(settings)
