"""The first-run dialog: what sharing means, what stays protected, and the three fields to join.

Shown when no server is configured. The words are for someone who never
opens a terminal: what other people will do with this PC's connection, what
they can never reach, and how to stop it. IT can pre-fill the fields (a
configuration file or the command line), so the owner may only have to read
and press "Start sharing".
"""

from __future__ import annotations

import html
import socket
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from desktop_agent.ui.icons import app_icon
from desktop_agent.ui.settings import MAX_NAME_LENGTH, AgentSettings

EXPLANATION = """
<h2>Share this PC's internet connection with your company</h2>
<p>Your company's team sends some of its web requests — for example website tests or
price checks — out through office computers. With your agreement this PC becomes one of
them.</p>
<p><b>What happens</b></p>
<ul>
<li>Requests from your company's team leave through this PC's internet connection to
public websites.</li>
<li>You can see every site it reached in <i>Traffic…</i>, and pause or quit at any time
from the Exitpool icon next to the clock.</li>
</ul>
<p><b>What stays protected</b></p>
<ul>
<li>The office network, your home network and this PC itself can never be reached this
way: only public internet addresses.</li>
<li>Nothing on this PC is read or sent: not your files, your browsing or your passwords.</li>
<li>Mail servers are refused, so this PC can never send spam.</li>
</ul>
"""


class WelcomeDialog(QDialog):
    def __init__(
        self,
        settings: AgentSettings,
        autostart_default: bool = True,
        filled_from: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.setWindowTitle("Welcome to Exitpool")
        self.setWindowIcon(app_icon())
        text = QLabel(EXPLANATION)
        text.setWordWrap(True)
        text.setMinimumWidth(480)
        self.server_url = QLineEdit(settings.server_url)
        self.server_url.setPlaceholderText("https://exitpool.example.com")
        self.enrollment_key = QLineEdit(settings.enrollment_key)
        self.enrollment_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.name = QLineEdit(settings.name or socket.gethostname())
        self.name.setMaxLength(MAX_NAME_LENGTH)
        self.start_at_login = QCheckBox("Start Exitpool when I log in")
        self.start_at_login.setChecked(autostart_default)
        form = QFormLayout()
        form.addRow("Server address", self.server_url)
        form.addRow("Enrollment key", self.enrollment_key)
        form.addRow("This PC's name", self.name)
        form.addRow(self.start_at_login)
        self.filled_from = QLabel()
        if filled_from is not None:
            self.filled_from.setText(
                f"Filled in by your IT department (from <code>{html.escape(str(filled_from))}"
                "</code>). Press <b>Start sharing</b> if you agree."
            )
            self.filled_from.setWordWrap(True)
            form.addRow(self.filled_from)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #b3261e;")
        self.problem.setWordWrap(True)
        buttons = QDialogButtonBox()
        self.start_button = buttons.addButton(
            "Start sharing", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.later_button = buttons.addButton("Not now", QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)

    def accept(self) -> None:
        self.settings.server_url = self.server_url.text().strip()
        self.settings.enrollment_key = self.enrollment_key.text().strip()
        self.settings.name = self.name.text().strip()
        errors = self.settings.errors()
        if not self.settings.enrollment_key:
            errors.setdefault(
                "enrollment_key", "Enter the enrollment key your IT contact gave you."
            )
        if errors:
            self.problem.setText(next(iter(errors.values())))
            return
        super().accept()
