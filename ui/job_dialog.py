"""A dialog that runs one long job at a time through the window's job service (export, import)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog

from ui.workers import Task, Workers


class JobDialog(QDialog):
    """Owns the running `Task`; closing the dialog while it runs cancels it and waits, so
    no partial file is left and nothing is delivered to a closed dialog.

    Given no job service (a dialog opened on its own, as in tests) it makes a private one
    with the same behaviour and stops it when the dialog closes."""

    def __init__(self, workers: Workers | None, parent=None):
        super().__init__(parent)
        self._own_workers = workers is None
        self.workers = workers if workers is not None else Workers(self, lanes=("task",))
        self.task: Task | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None

    def start_task(self, store, work, *, title: str, text: str, total: int | None, cancelling: str,
                   on_done, on_error) -> None:
        """Run `work(progress, stop)` on the task lane with the progress dialog."""

        def finished(callback):
            def deliver(value):
                self.task = None
                callback(value)
            return deliver

        self.task = self.workers.run_task("task", work, title=title, text=text, parent=self, store=store,
                                          total=total, cancelling=cancelling, owner=self,
                                          on_done=finished(on_done), on_error=finished(on_error))

    def cancel_and_wait(self, wait_ms: int = 10000) -> None:
        task, self.task = self.task, None
        if task is not None:
            if task.dialog is not None:
                task.dialog.finish()
            self.workers.cancel_and_wait(task.job, task.stop, wait_ms)

    def reject(self) -> None:
        self.cancel_and_wait()
        super().reject()

    def done(self, result: int) -> None:
        self.cancel_and_wait()
        if self._own_workers:
            self.workers.shutdown()
        super().done(result)
