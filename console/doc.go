// Package console streams the serial consoles of one or more devices: a
// terminal UI (bubbletea) for people, and plain lines for pipes and files.
//
// The pieces:
//
//   - Session owns the ports. One reader goroutine per device copies every
//     byte into an unbounded queue and never waits for the screen, so a slow
//     terminal cannot make the port's buffer overflow. When a port fails it is
//     closed and reopened until the device is back (a USB board unplugged, a
//     serial server restarted).
//   - Session.Next turns what was queued into Lines: split at line endings,
//     Mongoose OS RPC frames recognised, annotated (LineAnnotator, e.g. a
//     crash decoder), copied with timestamps to the log file.
//   - Model is the bubbletea model over a Session; Plain writes lines to an
//     io.Writer with the same options and no escape codes.
//   - Session.Lend pauses a device's reader and hands its port to someone
//     else (PortLender), for commands that need the line while the console
//     runs.
//
// The package prints nothing itself: everything goes to the writers and
// program the caller supplies.
package console
