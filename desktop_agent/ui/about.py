"""About: the version, where the log is (with a button to open it), and where things are kept."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout

from desktop_agent import __version__
from desktop_agent.ui.controller import AgentController
from desktop_agent.ui.icons import app_icon


class AboutDialog(QDialog):
    def __init__(self, controller: AgentController, log_file: Path) -> None:
        super().__init__()
        self.log_file = log_file
        self.setWindowTitle("About Exitpool")
        self.setWindowIcon(app_icon())
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(64, 64))
        server = controller.settings.server_url or "no server yet"
        text = QLabel(
            f"<h3>Exitpool Agent {__version__}</h3>"
            f"<p>Shares this PC's internet connection with <b>{server}</b>, "
            "only towards public websites, and only while you let it.</p>"
            f"<p>Log file: <code>{log_file}</code><br>"
            f"Settings and traffic totals: <code>{controller.config_dir}</code><br>"
            f"Credential: {controller.credentials.description}</p>"
        )
        text.setWordWrap(True)
        self.open_log = QPushButton("Open log folder")
        self.open_log.clicked.connect(self.show_log_folder)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(icon)
        layout.addWidget(text)
        layout.addWidget(self.open_log)
        layout.addWidget(buttons)

    def show_log_folder(self) -> bool:
        """Open the folder holding the log in the system's file manager."""
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.log_file.parent)))
