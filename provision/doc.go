// Package provision will hold the device-side client used after flashing:
// RPC over the serial line (Mongoose OS framing), Wi-Fi, configuration and
// files. Nothing is implemented yet; see the project's issues.
package provision
