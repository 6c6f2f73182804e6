#!/bin/sh
# Apply (or drop) mos's udev rule to boards already plugged in, so access
# works without replugging. Nothing to do where udev is not running
# (containers, chroots).
if command -v udevadm >/dev/null 2>&1 && [ -d /run/udev ]; then
	udevadm control --reload-rules 2>/dev/null || true
	udevadm trigger --subsystem-match=tty --action=change 2>/dev/null || true
fi
exit 0
