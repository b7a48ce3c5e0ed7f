"""The Windows installer: an Inno Setup script and the small build step that compiles it."""
