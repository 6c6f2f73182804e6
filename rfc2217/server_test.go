package rfc2217

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a Handler that logs its calls; the bridge logs data too, so
// the log shows the order the serial port would see.
type recorder struct {
	mu       sync.Mutex
	log      []string
	failBaud bool
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.log); n > 0 && strings.HasPrefix(s, "data ") && strings.HasPrefix(r.log[n-1], "data ") {
		r.log[n-1] += strings.TrimPrefix(s, "data ")
		return
	}
	r.log = append(r.log, s)
}

func (r *recorder) entries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

func (r *recorder) SetBaud(baud int) error {
	r.add(fmt.Sprint("baud ", baud))
	if r.failBaud {
		return errors.New("unsupported rate")
	}
	return nil
}
func (r *recorder) SetDTR(on bool) error    { r.add(fmt.Sprint("dtr ", on)); return nil }
func (r *recorder) SetRTS(on bool) error    { r.add(fmt.Sprint("rts ", on)); return nil }
func (r *recorder) Purge(rx, tx bool) error { r.add(fmt.Sprint("purge ", rx, tx)); return nil }

// harness connects a raw TCP client to a ServerConn whose data goes to a
// recorder.
type harness struct {
	t      *testing.T
	client net.Conn
	server *ServerConn
	rec    *recorder
	events chan Event // what the client receives
}

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func newHarness(t *testing.T, rec *recorder) *harness {
	client, serverSide := tcpPair(t)
	server, err := NewServerConn(serverSide, rec, 115200)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, client: client, server: server, rec: rec, events: make(chan Event, 1000)}
	go func() {
		buf := make([]byte, 3) // small, to exercise pending data
		for {
			n, err := server.Read(buf)
			if n > 0 {
				rec.add("data " + string(buf[:n]))
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		var p Parser
		buf := make([]byte, 1024)
		for {
			n, err := client.Read(buf)
			for in := buf[:n]; len(in) > 0; {
				ev, used := p.Next(in)
				in = in[used:]
				if ev.Kind != EventNone {
					h.events <- appendEvent(nil, ev)[0]
				}
			}
			if err != nil {
				close(h.events)
				return
			}
		}
	}()
	return h
}

func (h *harness) send(parts ...[]byte) {
	h.t.Helper()
	if _, err := h.client.Write(cat(parts...)); err != nil {
		h.t.Fatal(err)
	}
}

// next returns the next event the client received.
func (h *harness) next() Event {
	h.t.Helper()
	select {
	case ev, ok := <-h.events:
		if !ok {
			h.t.Fatal("connection closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		h.t.Fatal("timed out waiting for the server")
	}
	return Event{}
}

// skipStart consumes the server's opening negotiation.
func (h *harness) skipStart() {
	h.t.Helper()
	for range 4 {
		if ev := h.next(); ev.Kind != EventNegotiation {
			h.t.Fatalf("start: got %+v", ev)
		}
	}
}

// command sends c and returns the server's reply.
func (h *harness) command(c Command) Command {
	h.t.Helper()
	h.send(AppendCommand(nil, c))
	ev := h.next()
	if ev.Kind != EventComPort {
		h.t.Fatalf("%v: got %+v, want a reply", c, ev)
	}
	return ev.ComPort
}

func (h *harness) waitLog(want ...string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := h.rec.entries()
		if reflect.DeepEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("handler log %q, want %q", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServerNegotiation(t *testing.T) {
	h := newHarness(t, &recorder{})
	var start []Event
	for range 4 {
		start = append(start, h.next())
	}
	checkEvents(t, start, []Event{neg(WILL, OptBinary), neg(DO, OptBinary), neg(WILL, OptSGA), neg(DO, OptComPort)})

	// Crossing requests and answers get no reply; a refused option does.
	h.send(AppendNegotiation(nil, WILL, OptComPort), AppendNegotiation(nil, DO, OptBinary),
		AppendNegotiation(nil, WILL, OptBinary), AppendNegotiation(nil, DO, OptEcho))
	checkEvents(t, []Event{h.next()}, []Event{neg(WONT, OptEcho)})
	if got := h.command(Command{Code: CmdSignature}); string(got.Text) != Signature || got.Code != 100 {
		t.Errorf("signature reply %v", got)
	}
}

func TestServerReplies(t *testing.T) {
	rec := &recorder{}
	h := newHarness(t, rec)
	h.skipStart()
	tests := []struct {
		send Command
		want Command
	}{
		{Command{Code: CmdSetBaudRate}, Command{Code: 101, Baud: 115200}},
		{Command{Code: CmdSetBaudRate, Baud: 921600}, Command{Code: 101, Baud: 921600}},
		{Command{Code: CmdSetBaudRate}, Command{Code: 101, Baud: 921600}},
		{Command{Code: CmdSetDataSize, Value: 7}, Command{Code: 102, Value: 8}},
		{Command{Code: CmdSetParity, Value: ParityEven}, Command{Code: 103, Value: ParityNone}},
		{Command{Code: CmdSetStopSize, Value: DataSizeRequest}, Command{Code: 104, Value: StopBits1}},
		{Command{Code: CmdSetControl, Value: ControlFlowNone}, Command{Code: 105, Value: ControlFlowNone}},
		{Command{Code: CmdSetControl, Value: ControlFlowHardware}, Command{Code: 105, Value: ControlFlowNone}},
		{Command{Code: CmdSetControl, Value: ControlDTRRequest}, Command{Code: 105, Value: ControlDTROff}},
		{Command{Code: CmdSetControl, Value: ControlDTROn}, Command{Code: 105, Value: ControlDTROn}},
		{Command{Code: CmdSetControl, Value: ControlDTRRequest}, Command{Code: 105, Value: ControlDTROn}},
		{Command{Code: CmdSetControl, Value: ControlRTSOn}, Command{Code: 105, Value: ControlRTSOn}},
		{Command{Code: CmdSetControl, Value: ControlRTSOff}, Command{Code: 105, Value: ControlRTSOff}},
		{Command{Code: CmdSetControl, Value: ControlBreakOn}, Command{Code: 105, Value: ControlBreakOff}},
		{Command{Code: CmdSetControl, Value: ControlInboundFlowXonXoff}, Command{Code: 105, Value: ControlInboundFlowNone}},
		{Command{Code: CmdSetLineStateMask, Value: LineBreak}, Command{Code: 110, Value: LineBreak}},
		{Command{Code: CmdSetModemStateMask, Value: ModemCD}, Command{Code: 111, Value: ModemCD}},
		{Command{Code: CmdPurgeData, Value: PurgeBoth}, Command{Code: 112, Value: PurgeBoth}},
		{Command{Code: CmdPurgeData, Value: PurgeRx}, Command{Code: 112, Value: PurgeRx}},
	}
	for _, tt := range tests {
		if got := h.command(tt.send); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v: reply %v, want %v", tt.send, got, tt.want)
		}
	}
	h.waitLog("baud 921600", "dtr true", "rts true", "rts false", "purge true true", "purge true false")
	if h.server.Baud() != 921600 || !h.server.DTR() || h.server.RTS() {
		t.Errorf("server state baud %d DTR %v RTS %v", h.server.Baud(), h.server.DTR(), h.server.RTS())
	}

	// A rate the handler refuses is answered with the one in force.
	rec.mu.Lock()
	rec.failBaud = true
	rec.mu.Unlock()
	if got := h.command(Command{Code: CmdSetBaudRate, Baud: 300}); got.Baud != 921600 {
		t.Errorf("refused rate answered with %d, want 921600", got.Baud)
	}

	// Notifications pass the client's masks.
	if err := h.server.NotifyModemState(ModemCD | ModemCTS); err != nil {
		t.Fatal(err)
	}
	if err := h.server.NotifyLineState(LineBreak | LineOverrun); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Command{{Code: 107, Value: ModemCD}, {Code: 106, Value: LineBreak}} {
		if ev := h.next(); ev.Kind != EventComPort || !reflect.DeepEqual(ev.ComPort, want) {
			t.Errorf("notification %+v, want %v", ev, want)
		}
	}
}

func TestServerKeepsOrder(t *testing.T) {
	h := newHarness(t, &recorder{})
	h.skipStart()
	h.send([]byte("ab"), AppendCommand(nil, Command{Code: CmdSetControl, Value: ControlDTROn}),
		[]byte("cdefg"), AppendCommand(nil, Command{Code: CmdSetBaudRate, Baud: 74880}),
		AppendCommand(nil, Command{Code: CmdSetControl, Value: ControlRTSOn}),
		AppendEscaped(nil, []byte{'h', 0xff, 'i'}),
		[]byte{IAC, NOP, IAC, SB, 24, 1, IAC, SE}, // ignored by the server
		[]byte("j"))
	h.waitLog("data ab", "dtr true", "data cdefg", "baud 74880", "rts true", "data h\xffij")
}

func TestServerWriteEscapes(t *testing.T) {
	h := newHarness(t, &recorder{})
	h.skipStart()
	payload := bytes.Repeat([]byte{0xff, 'a', 0xff, 0xff}, 3000) // more than one write chunk
	if n, err := h.server.Write(payload); n != len(payload) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	var got []byte
	for len(got) < len(payload) {
		ev := h.next()
		if ev.Kind != EventData {
			t.Fatalf("got %+v", ev)
		}
		got = append(got, ev.Data...)
	}
	if !bytes.Equal(got, payload) {
		t.Error("data changed on the way")
	}
}

func TestServerFlowControl(t *testing.T) {
	h := newHarness(t, &recorder{})
	h.skipStart()
	h.send(AppendCommand(nil, Command{Code: CmdFlowControlSuspend}))
	h.command(Command{Code: CmdSetBaudRate}) // the reply shows the suspend was read
	written := make(chan error, 1)
	go func() {
		_, err := h.server.Write([]byte("x"))
		written <- err
	}()
	select {
	case err := <-written:
		t.Fatalf("Write went through while suspended: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	h.send(AppendCommand(nil, Command{Code: CmdFlowControlResume}))
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	checkEvents(t, []Event{h.next()}, []Event{data("x")})

	// Close wakes a suspended Write.
	h.send(AppendCommand(nil, Command{Code: CmdFlowControlSuspend}))
	h.command(Command{Code: CmdSetBaudRate})
	go func() {
		_, err := h.server.Write([]byte("y"))
		written <- err
	}()
	time.Sleep(10 * time.Millisecond)
	h.server.Close()
	if err := <-written; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

func TestServerReadEOF(t *testing.T) {
	client, serverSide := tcpPair(t)
	server, err := NewServerConn(serverSide, &recorder{}, 9600)
	if err != nil {
		t.Fatal(err)
	}
	client.Write([]byte{'a', IAC, WILL, OptComPort, 'b', IAC, SB, OptComPort})
	client.Close()
	var got []byte
	buf := make([]byte, 10)
	for {
		n, err := server.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if string(got) != "ab" {
		t.Errorf("read %q before EOF, want %q", got, "ab")
	}
}
