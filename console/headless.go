package console

import (
	"context"
	"errors"
	"io"

	tea "github.com/charmbracelet/bubbletea"
)

// RunHeadless runs the terminal UI as RunTUI does, but with no terminal: no
// input, a window of width x height cells, and every frame rendered into
// out (io.Discard to throw it away). It is for benchmarks and tests that
// need the full screen path (batches taken in, scrollback bounded, View at
// the renderer's frame rate) without a terminal. It returns when ctx ends
// or the backend's stream ends.
func RunHeadless(ctx context.Context, be Backend, opts Options, out io.Writer, width, height int) error {
	m := NewModel(ctx, be, opts)
	p := tea.NewProgram(m, tea.WithInput(nil), tea.WithOutput(out), tea.WithContext(ctx), tea.WithoutSignalHandler())
	// Send waits until Run takes messages; a terminal would send the size
	// first too.
	go p.Send(tea.WindowSizeMsg{Width: width, Height: height})
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}
