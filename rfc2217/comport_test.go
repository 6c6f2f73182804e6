package rfc2217

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	commands := []Command{
		{Code: CmdSignature, Text: []byte{}},
		{Code: CmdSignature + ServerOffset, Text: []byte("mos \xff")},
		{Code: CmdSetBaudRate, Baud: 115200},
		{Code: CmdSetBaudRate, Baud: 0xffffffff},
		{Code: CmdSetBaudRate + ServerOffset, Baud: 0},
		{Code: CmdSetDataSize, Value: 8},
		{Code: CmdSetParity, Value: ParityEven},
		{Code: CmdSetStopSize, Value: StopBits1_5},
		{Code: CmdSetControl, Value: ControlRTSOff},
		{Code: CmdNotifyLineState + ServerOffset, Value: LineBreak | LineDataReady},
		{Code: CmdNotifyModemState + ServerOffset, Value: 0xff},
		{Code: CmdFlowControlSuspend},
		{Code: CmdFlowControlResume + ServerOffset},
		{Code: CmdSetLineStateMask, Value: 0},
		{Code: CmdSetModemStateMask, Value: ModemCTS | ModemDSR},
		{Code: CmdPurgeData, Value: PurgeRx},
	}
	for _, c := range commands {
		wire := AppendCommand(nil, c)
		events, p := parseChunks(t, wire)
		if len(events) != 1 || events[0].Kind != EventComPort {
			t.Errorf("%v: parsed %v into %+v", c, wire, events)
			continue
		}
		if !reflect.DeepEqual(events[0].ComPort, c) {
			t.Errorf("%v: round trip gave %v", c, events[0].ComPort)
		}
		if err := p.End(); err != nil {
			t.Errorf("%v: End: %v", c, err)
		}
	}
}

func TestAppendCommandWire(t *testing.T) {
	tests := []struct {
		c    Command
		want []byte
	}{
		{Command{Code: CmdSetBaudRate, Baud: 9600}, []byte{IAC, SB, 44, 1, 0, 0, 0x25, 0x80, IAC, SE}},
		{Command{Code: CmdSetBaudRate, Baud: 0xff}, []byte{IAC, SB, 44, 1, 0, 0, 0, IAC, IAC, IAC, SE}},
		{Command{Code: CmdSetControl, Value: ControlDTROff}, []byte{IAC, SB, 44, 5, 9, IAC, SE}},
		{Command{Code: CmdPurgeData + ServerOffset, Value: PurgeBoth}, []byte{IAC, SB, 44, 112, 3, IAC, SE}},
		{Command{Code: CmdFlowControlResume}, []byte{IAC, SB, 44, 9, IAC, SE}},
	}
	for _, tt := range tests {
		if got := AppendCommand(nil, tt.c); !bytes.Equal(got, tt.want) {
			t.Errorf("AppendCommand(%v) = %v, want %v", tt.c, got, tt.want)
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	tests := []struct {
		payload []byte
		want    error
	}{
		{nil, ErrEmptyCommand},
		{[]byte{13}, ErrUnknownCommand},
		{[]byte{99, 1}, ErrUnknownCommand},
		{[]byte{113, 1}, ErrUnknownCommand},
		{[]byte{255}, ErrUnknownCommand},
		{[]byte{CmdSetBaudRate}, ErrCommandLength},
		{[]byte{CmdSetBaudRate, 0, 0, 0, 0, 0}, ErrCommandLength},
		{[]byte{CmdSetControl}, ErrCommandLength},
		{[]byte{CmdPurgeData + ServerOffset, 1, 2}, ErrCommandLength},
		{[]byte{CmdFlowControlSuspend, 0}, ErrCommandLength},
	}
	for _, tt := range tests {
		if _, err := ParseCommand(tt.payload); !errors.Is(err, tt.want) {
			t.Errorf("ParseCommand(%v) = %v, want %v", tt.payload, err, tt.want)
		}
	}
}

func TestCommandReply(t *testing.T) {
	if got, want := (Command{Code: CmdSetBaudRate, Baud: 0}).Reply(921600), (Command{Code: 101, Baud: 921600}); !reflect.DeepEqual(got, want) {
		t.Errorf("baud reply = %v, want %v", got, want)
	}
	if got, want := (Command{Code: CmdSetControl, Value: ControlDTRRequest}).Reply(uint32(ControlDTROn)), (Command{Code: 105, Value: ControlDTROn}); !reflect.DeepEqual(got, want) {
		t.Errorf("control reply = %v, want %v", got, want)
	}
	c := Command{Code: 105, Value: 8}
	if !c.FromServer() || c.Base() != CmdSetControl {
		t.Errorf("%v: FromServer %v Base %d", c, c.FromServer(), c.Base())
	}
	if got := c.String(); got != "server SET-CONTROL 8" {
		t.Errorf("String() = %q", got)
	}
}
