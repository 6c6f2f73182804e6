// Package console streams the serial consoles of one or more devices: a
// terminal UI (bubbletea) for people, and plain lines for pipes and files.
//
// The pieces:
//
//   - Session owns the ports. One reader goroutine per device copies every
//     byte into an unbounded queue and never waits for the screen, so a slow
//     terminal cannot make the port's buffer overflow. When a port fails it is
//     closed and reopened until the device is back (a USB board unplugged, a
//     serial server restarted); a bad address or a missing permission is not
//     retried (Session.Err).
//   - Session.Next turns what was queued into Lines: split at line endings,
//     Mongoose OS RPC frames recognised, log levels classified, annotated
//     (LineAnnotator), copied with date and time to the log file.
//   - With Config.Chip naming a chip whose ROM speaks at another rate than
//     its applications (the ESP8266: 74880), each reader feeds what it reads
//     to a console/bootbaud Follower, Reset moves the port to the ROM's rate
//     first, and each move is a note in the device's stream.
//   - Model is the bubbletea model over a Backend (a Session); Plain writes
//     lines to an io.Writer with the same options and no escape codes.
//     RunTUI runs it on a terminal; RunHeadless without one (benchmarks).
//
// Two hooks are meant for other packages:
//
//   - LineAnnotator: Config.Annotator is asked about every complete line,
//     in order, from one goroutine; a crash decoder given the firmware's ELF
//     answers a backtrace line with functions and source lines, shown under
//     it on screen, in plain output and in the log file.
//   - PortLender (implemented by Session): Lend pauses a device's reader and
//     runs a function with the open port to itself, so another command can
//     use the line while the console runs; the status bar shows who holds
//     it and the log marks it. Note adds the borrower's summary to the log.
//     While lent, the console's own sends and resets are refused.
//
// The package prints nothing itself: everything goes to the writers and
// program the caller supplies.
package console
