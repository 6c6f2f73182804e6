package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Plain writes the session's lines to w as plain text, for a pipe, a file
// or CI: no escape codes, with the same timestamps, filter and RPC
// settings as the screen. Device state changes (lost, reconnected) go to
// status, which may be nil. It returns when ctx ends or the session stops;
// text received without a final line ending is written then.
func Plain(ctx context.Context, s *Session, opts Options, w, status io.Writer) error {
	var prev time.Time
	names := len(s.Devices()) > 1
	emit := func(l Line) error {
		if l.Mark {
			if status != nil {
				fmt.Fprintf(status, "console: %s: %s\n", s.Name(l.Dev), strings.TrimPrefix(l.Text, "--- "))
			}
			return nil
		}
		if (l.RPC && !opts.ShowRPC) || !opts.Filter.Match(l.Text) {
			prev = l.Time
			return nil
		}
		var b strings.Builder
		if opts.Time != TimeOff {
			b.WriteString(stamp(opts.Time, l.Time, s.Start(), prev) + " ")
		}
		prev = l.Time
		if names {
			b.WriteString("[" + s.Name(l.Dev) + "] ")
		}
		switch {
		case opts.Hex:
			b.WriteString(hexDump(l.Raw))
		case l.RPC:
			b.WriteString("RPC " + prettyJSON(l.Text))
		case opts.Control:
			b.WriteString(visibleRaw(l.Raw))
		default:
			b.WriteString(safeText(l.Text, false))
		}
		b.WriteByte('\n')
		for _, a := range splitLines(l.Annot) {
			b.WriteString("  -> " + safeText(a, false) + "\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	for {
		batch, err := s.Next(ctx)
		if err != nil {
			for _, l := range s.Flush() {
				if err := emit(l); err != nil {
					return err
				}
			}
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if status != nil {
			for _, st := range batch.Status {
				if msg := statusText(s.Name(st.Dev), st); msg != "" {
					fmt.Fprintln(status, msg)
				}
			}
		}
		for _, l := range batch.Lines {
			if err := emit(l); err != nil {
				return err
			}
		}
	}
}

// statusText describes a state change for plain output.
func statusText(name string, st Status) string {
	switch st.State {
	case StateConnected:
		return "console: " + name + ": connected"
	case StateConnecting:
		return fmt.Sprintf("console: %s: cannot open (%v); retrying until it appears", name, st.Err)
	case StateReconnecting:
		if st.Attempt > 0 {
			return fmt.Sprintf("console: %s: still away (%v); retrying", name, st.Err)
		}
		return fmt.Sprintf("console: %s: lost (%v); reconnecting", name, st.Err)
	case StateLent:
		return "console: " + name + ": port lent to " + st.Who
	}
	return ""
}

// RunTUI runs the terminal UI until the user quits or ctx ends.
func RunTUI(ctx context.Context, be Backend, opts Options, in io.Reader, out io.Writer) error {
	m := NewModel(ctx, be, opts)
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithInput(in), tea.WithOutput(out), tea.WithContext(ctx))
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}
