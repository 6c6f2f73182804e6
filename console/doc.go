// Package console will stream a device's serial console in a terminal UI.
// Nothing is implemented yet; see the project's issues.
package console
