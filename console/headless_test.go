package console

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptBackend hands out its batches one per Next, then ends the stream.
type scriptBackend struct {
	fakeBackend
	mu      sync.Mutex
	batches []Batch
}

func (s *scriptBackend) Next(ctx context.Context) (Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) == 0 {
		return Batch{}, io.EOF
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

// syncBuffer: the renderer writes from its own goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunHeadlessRendersAndEnds(t *testing.T) {
	be := &scriptBackend{fakeBackend: fakeBackend{names: []string{"d"}}}
	be.batches = []Batch{batchOf(0, "first line", "second line"), batchOf(0, "mgos_init.c:33 Init done")}
	var out syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := RunHeadless(ctx, be, Options{}, &out, 100, 10); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("RunHeadless did not return when the stream ended")
	}
	// The last frame is rendered on quitting: it holds every line.
	for _, s := range []string{"first line", "second line", "Init done"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("no %q rendered in:\n%q", s, out.String())
		}
	}
}
