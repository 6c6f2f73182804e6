package slip

import (
	"bytes"
	"errors"
	"testing"
)

// decodeAll runs a byte stream through a Decoder and collects what it says.
func decodeAll(d *Decoder, in []byte) (frames [][]byte, junk []byte, errs []error) {
	for _, b := range in {
		r, err := d.Push(b)
		switch r {
		case Frame:
			frames = append(frames, append([]byte(nil), d.Frame()...))
		case Junk:
			junk = append(junk, b)
		case Error:
			errs = append(errs, err)
		}
	}
	return
}

func TestRoundTrip(t *testing.T) {
	payloads := [][]byte{
		{0x01},
		{End, Esc, EscEnd, EscEsc},
		bytes.Repeat([]byte{End}, 100),
		[]byte("OHAI"),
	}
	for _, p := range payloads {
		enc := Encode(nil, p)
		if bytes.Count(enc, []byte{End}) != 2 {
			t.Fatalf("Encode(%x) = %x: delimiter inside frame", p, enc)
		}
		frames, junk, errs := decodeAll(&Decoder{}, enc)
		if len(frames) != 1 || !bytes.Equal(frames[0], p) || len(junk) != 0 || len(errs) != 0 {
			t.Fatalf("decode(Encode(%x)) = %x junk %x errs %v", p, frames, junk, errs)
		}
	}
}

func TestDecoderStream(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		frames []string
		junk   string
		errs   []error
	}{
		{"junk between frames", []byte("ets Jun\r\n\xc0ab\xc0garbage\xc0cd\xc0"), []string{"ab", "cd"}, "ets Jun\r\ngarbage", nil},
		{"back-to-back delimiters", []byte("\xc0\xc0\xc0ab\xc0"), []string{"ab"}, "", nil},
		{"bad escape drops frame", []byte("\xc0a\xdb\x01b\xc0\xc0ok\xc0"), []string{"ok"}, "", []error{ErrBadEscape}},
		{"escape at end", []byte("\xc0a\xdb\xc0ok\xc0"), []string{"ok"}, "", []error{ErrBadEscape}},
		{"truncated frame yields nothing", []byte("\xc0abc"), nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames, junk, errs := decodeAll(&Decoder{}, tt.in)
			var got []string
			for _, f := range frames {
				got = append(got, string(f))
			}
			if len(got) != len(tt.frames) {
				t.Fatalf("frames = %q, want %q", got, tt.frames)
			}
			for i := range got {
				if got[i] != tt.frames[i] {
					t.Fatalf("frames = %q, want %q", got, tt.frames)
				}
			}
			if string(junk) != tt.junk {
				t.Errorf("junk = %q, want %q", junk, tt.junk)
			}
			if len(errs) != len(tt.errs) {
				t.Fatalf("errs = %v, want %v", errs, tt.errs)
			}
			for i := range errs {
				if !errors.Is(errs[i], tt.errs[i]) {
					t.Errorf("err %d = %v, want %v", i, errs[i], tt.errs[i])
				}
			}
		})
	}
}

func TestDecoderLimit(t *testing.T) {
	d := &Decoder{MaxFrame: 8}
	in := Encode(nil, bytes.Repeat([]byte{1}, 9))
	in = append(in, Encode(nil, []byte{2, 2})...)
	frames, _, errs := decodeAll(d, in)
	if len(errs) != 1 || !errors.Is(errs[0], ErrTooLong) {
		t.Fatalf("errs = %v, want one ErrTooLong", errs)
	}
	if len(frames) != 1 || !bytes.Equal(frames[0], []byte{2, 2}) {
		t.Fatalf("frames = %x, want the short frame after the long one", frames)
	}
}

// FuzzDecoder feeds arbitrary bytes: the decoder must never panic, never
// return a frame above its limit, and every frame it returns must re-encode
// to bytes that decode to the same frame.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte("\xc0\x01\x08\x04\x00\x07\x07\x12\x20\x00\x00\x00\x00\xc0"))
	f.Add([]byte("\xc0\xdb\xdc\xdb\xdd\xc0"))
	f.Add([]byte("\xc0\xdb"))
	f.Add([]byte("\xdb\xdb\xc0\xdb\x00\xc0"))
	f.Add(bytes.Repeat([]byte{0x55}, 300))
	f.Add(append([]byte{End}, bytes.Repeat([]byte{0xAA}, 200)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		d := &Decoder{MaxFrame: 128}
		for _, b := range in {
			r, err := d.Push(b)
			if (r == Error) != (err != nil) {
				t.Fatalf("result %v with err %v", r, err)
			}
			if r == Frame {
				fr := append([]byte(nil), d.Frame()...)
				if len(fr) > 128 || len(fr) == 0 {
					t.Fatalf("frame of %d bytes", len(fr))
				}
				frames, _, errs := decodeAll(&Decoder{}, Encode(nil, fr))
				if len(errs) != 0 || len(frames) != 1 || !bytes.Equal(frames[0], fr) {
					t.Fatalf("re-encode of %x gave %x %v", fr, frames, errs)
				}
			}
		}
	})
}
