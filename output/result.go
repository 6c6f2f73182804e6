package output

// Result is what a command produces: the same answer rendered two ways.
//
// Data must return values that encode to stable JSON: non-nil slices (so an
// empty list prints as [] rather than null) and structs with explicit
// `json` tags, kept apart from library or wire types so that renaming a Go
// field never changes the JSON users' scripts read.
type Result interface {
	// Text is the answer for a person; a trailing newline is added if missing.
	Text() string
	// Data is the answer for a program, encoded as the "result" key.
	Data() any
}
