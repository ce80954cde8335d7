"""File > Publish to Media Server… against the stand-in: the confirmation lists what will be sent, the publish runs with progress and ends with a report."""

from __future__ import annotations

import collections

import pytest

from app.mediaserver_codec import names
from app.store import Store
from tests.app.test_publish import local_store, publishable
from tests.standin.fixture import standin  # noqa: F401 - the fixture
from ui.publish_dialog import PublishDialog


class Answers:
    """A Prompter stand-in: records each question and answers as told."""

    def __init__(self, answer: bool):
        self.answer = answer
        self.asked: list[tuple[str, str, str]] = []

    def confirm(self, title, text, ok_text="OK"):
        self.asked.append((title, text, ok_text))
        return self.answer


@pytest.fixture
def store(tmp_path):
    opened = local_store(f"sqlite:///{tmp_path / 'local.db'}", 20)
    opened.create_database("empty")
    yield opened
    opened.close()


def dialog_for(qtbot, store: Store, server, answer: bool) -> tuple[PublishDialog, Answers]:
    answers = Answers(answer)
    dialog = PublishDialog(store, "local", ["empty", "local"], prompter=answers)
    qtbot.addWidget(dialog)
    dialog.url_combo.setCurrentText(server.url)
    dialog.remote_edit.setText("remote")
    return dialog, answers


def test_confirmed_publish_sends_every_entry_once_and_reports(qtbot, store, standin):
    server = standin({"remote": []})
    dialog, answers = dialog_for(qtbot, store, server, True)
    with qtbot.waitSignal(dialog.published, timeout=60_000) as published:
        dialog.publish_button.click()
    qtbot.waitUntil(lambda: not dialog.busy)
    [(title, text, ok)] = answers.asked
    assert ok == "Publish 17" and "Send up to 17 TrainImageHash actions" in text and server.url in text
    assert "3 entries have no image data" in text and "with,comma" in text
    report = published.args[0]
    assert report.complete and len(report.published) == 17
    assert "17 entries trained" in dialog.report_view.toPlainText()
    assert "Done" in dialog.status.text()
    trained = collections.Counter(p["identifier"] for a, p in server.applied if a == names.TRAIN_IMAGE_HASH)
    assert trained == collections.Counter(list(publishable(store)))


def test_declined_publish_sends_nothing(qtbot, store, standin):
    server = standin({"remote": []})
    dialog, answers = dialog_for(qtbot, store, server, False)
    dialog.publish_button.click()
    qtbot.waitUntil(lambda: len(answers.asked) == 1 and not dialog.busy)
    assert dialog.status.text() == "Nothing was sent."
    assert names.TRAIN_IMAGE_HASH not in [r.action for r in server.requests]
    assert dialog.publish_button.isEnabled()


def test_a_database_without_images_asks_nothing(qtbot, store, standin):
    server = standin({"remote": []})
    dialog, answers = dialog_for(qtbot, store, server, True)
    dialog.database_combo.setCurrentText("empty")
    dialog.remote_edit.setText("remote")
    dialog.publish_button.click()
    qtbot.waitUntil(lambda: not dialog.busy and dialog.publish_button.isEnabled())
    assert answers.asked == [] and "nothing can be published" in dialog.status.text()


def test_a_missing_server_database_is_said_in_the_dialog(qtbot, store, standin):
    server = standin({"other": []})
    dialog, answers = dialog_for(qtbot, store, server, True)
    dialog.publish_button.click()
    qtbot.waitUntil(lambda: not dialog.busy and dialog.publish_button.isEnabled() and len(answers.asked) == 1,
                    timeout=30_000)
    assert "has no database 'remote'" in dialog.status.text()
    assert names.TRAIN_IMAGE_HASH not in [r.action for r in server.requests]
