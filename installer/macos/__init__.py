"""The macOS disk image: the Info.plist keys for the app bundle and the hdiutil recipe."""
