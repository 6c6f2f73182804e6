package console

import (
	"context"
	"errors"
	"io"

	"github.com/charmbracelet/x/ansi"
	"time"
)

// fakeBackend feeds the model by hand and records what it was asked to do.
type fakeBackend struct {
	names  []string
	start  time.Time
	sent   [][]byte
	resets []bool
}

func (f *fakeBackend) Next(ctx context.Context) (Batch, error) {
	<-ctx.Done()
	return Batch{}, io.EOF
}
func (f *fakeBackend) Send(dev int, b []byte) error { f.sent = append(f.sent, b); return nil }
func (f *fakeBackend) Reset(ctx context.Context, dev int, boot bool) error {
	f.resets = append(f.resets, boot)
	return nil
}
func (f *fakeBackend) Devices() []string { return f.names }
func (f *fakeBackend) Name(i int) string { return f.names[i] }
func (f *fakeBackend) Start() time.Time  { return f.start }

var errLost = errors.New("read rfc2217://127.0.0.1:4000: device disconnected")

func visibleWidth(s string) int { return ansi.StringWidth(s) }
