package console

// key is one binding shown in the help overlay.
type key struct{ keys, what string }

// helpKeys lists every key of the log view, in the order the help shows
// them. Update handles exactly these.
var helpKeys = []key{
	{"↑ k / ↓ j", "scroll one line (scrolling up pauses following)"},
	{"PgUp / PgDn", "scroll one page"},
	{"Home g", "oldest line"},
	{"End G", "newest line, follow again"},
	{"/", "search; n older match, N newer match"},
	{"f / F", "filter by text / by regular expression (empty: off)"},
	{"Esc", "clear search and filter"},
	{"t", "timestamps: off, absolute, since start, delta"},
	{"x", "hex view of the raw bytes"},
	{"c", "control characters and escape codes visible"},
	{"p", "RPC frames: hidden / pretty-printed"},
	{"i", "send a line of text (Enter adds the line ending)"},
	{"h", "send raw bytes written in hex (de ad be ef)"},
	{"e", "line ending: CRLF, LF, CR, none"},
	{"R  Ctrl-R", "reset the board (RTS pulse)"},
	{"B", "reset into the bootloader (DTR/RTS sequence)"},
	{"C  Ctrl-L", "clear the screen and scrollback"},
	{"Tab", "next device (when there are several)"},
	{"?", "this help (any key closes it)"},
	{"q  Ctrl-C", "quit"},
}
