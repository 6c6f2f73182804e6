// Package output is mos's one output layer: every command hands its answer,
// warnings, messages, progress and final error to a Printer, never to
// fmt.Print or os.Stdout, so that --json output stays machine-readable and
// the exit code is decided in one place (see ExitCode).
//
// # The --json contract
//
// With --json, stdout carries exactly one JSON document (indented, ending in
// a newline). On success it is
//
//	{"result": <Result.Data()>, "warnings": ["...", ...]}
//
// and on failure
//
//	{"error": {"message": "...", "code": 3, "name": "port_not_found", "hint": "..."}, "warnings": [...]}
//
// A command that fails or is interrupted after getting part of its job done
// (a flash with some regions verified) attaches that part with WithResult,
// and the failure document then carries it next to the error:
//
//	{"result": <partial Result.Data()>, "error": {...}, "warnings": [...]}
//
// so a script can tell an interrupted run (exit 130, "error".name
// "interrupted") from a complete one by the "error" key alone.
//
// "warnings" is always present and always an array, so a consumer never needs
// to tell null from []. The same envelope is used by every command, which is
// why a result that is a list (mos ports) is still wrapped: `jq .result`.
//
// Everything else goes to stderr as JSON Lines: one object per line with one
// key naming what it is, {"progress": {...}}, {"info": "..."},
// {"debug": "..."} or, once the document has been printed, {"warning": "..."}.
// A progress line is
//
//	{"progress": {"stage": "writing", "part": "app", "done": 430080, "total": 1048576,
//	  "elapsed_s": 4.7, "rate_bps": 91504, "eta_s": 6.8}}
//
// with "total" 0 when the size is unknown (and for operations the device
// reports no progress for, such as a chip erase, "done" 0 too), "rate_bps"
// and "eta_s" absent until they can be estimated, and "finished": true on
// the last line of a phase (stage and part). One line is written per
// percent, or per second when the size is unknown.
//
// Without --json, results go to stdout as text; warnings ("Warning: ..."),
// messages, progress and errors ("Error: ..." plus "Hint: ...") go to stderr.
package output
