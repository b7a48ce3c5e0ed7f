"""The tray app: icon, menus, windows and settings over the Qt-free engine."""
