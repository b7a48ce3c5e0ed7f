"""The Linux package of the agent (a .deb built with dpkg-deb)."""
