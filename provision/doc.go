// Package provision talks to the firmware running on a board, after
// flashing: Mongoose OS RPC over the serial line, and on top of it device
// info and reboot, configuration, files and Wi-Fi.
//
// A Client owns the reading side of a port.Port. Everything the device
// prints that is not an RPC frame is console text, handed line by line to
// Options.Log, so a caller can show the device's log while it works.
//
// # Wire
//
// Requests are framed as the firmware's rpc-uart channel expects: a newline,
// `"""`, the JSON (ASCII only: any byte >= 0x80 makes the device wipe its
// receive buffer), its CRC-32 as 8 lowercase hex digits, `"""`, a newline.
// Replies are picked out of the log: a frame starts at a delimiter (`"""`
// or a newline) directly followed by `{` (or 0x04, the handshake echo) and
// ends at the next delimiter; a CRC that does not match drops the frame,
// and the request is sent again.
//
// # Flow control
//
// The device has a small receive FIFO and answers overruns with XON/XOFF
// (0x11/0x13), which the Client strips from its input. Writes go out in
// small chunks (16 bytes at 115200, see chunkSize), each drained with
// port.Drain while the next one is already queued, and a chunk is started
// only while the device has not said XOFF. So at most two chunks are out
// of the Client's hands when an XOFF arrives, within what the device's
// FIFO has left. Nothing sleeps between chunks: the line runs at the
// wire's rate, where the old mos paced itself to 16 bytes every 5 ms.
//
// # Retries
//
// Each request has a random id in [2^40, 2^41); replies are matched by id.
// When no reply comes within Options.CallTimeout, a reply fails its CRC,
// the firmware logs that it dropped a damaged frame, or the device is seen
// rebooting, a request is sent again with the same id, up to
// Options.Attempts times, but only for methods that are safe to run twice
// (see Retried). Others fail, naming the method.
//
// # Trying changes
//
// A configuration change that is saved and applied by a reboot (ConfigSet
// with Save and Reboot, JoinWiFi) is sent with try_once: the device boots
// once with it while its saved settings stay as they were. It is
// confirmed (Config.Save) once the device answers again and, for Wi-Fi
// station settings, once the station has an IP address; otherwise the
// device is brought back to its previous settings (see trial.go) and the
// error, a *ChangeFailedError, says so.
//
// The package prints nothing and reads no flags: callers pass Options and
// callbacks, and errors carry ExitCode and Hint methods that the CLI maps.
package provision
