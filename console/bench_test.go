package console

import (
	"context"
	"fmt"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"
)

// BenchmarkViewFilteredScrollback: a full scrollback where the filter
// matches almost nothing is the costliest view.
func BenchmarkViewFilteredScrollback(b *testing.B) {
	m := NewModel(context.Background(), &fakeBackend{names: []string{"d"}}, Options{Scrollback: 200000, Profile: termenv.ANSI256})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	var texts []string
	for i := range 200000 {
		texts = append(texts, fmt.Sprintf("mgos_init.c:33          line %d of a long boot log, RAM: 299468 total", i))
	}
	m.Update(batchMsg{b: batchOf(0, texts...)})
	keys(m, "f", "line 12345 ", "enter")
	b.ResetTimer()
	for range b.N {
		m.Update(batchMsg{b: batchOf(0, "one more line")})
		_ = m.View()
	}
}
