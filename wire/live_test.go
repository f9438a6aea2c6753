package wire

import (
	"bytes"
	"testing"
	"time"
)

func TestLiveFrameRoundTrip(t *testing.T) {
	in := LiveFrame{Kind: LiveFragment, Key: true, Camera: "north-gate", Codec: "avc1.4d401e", Seq: 7,
		Time: time.Date(2026, 11, 22, 3, 0, 0, 123456000, time.UTC), BaseTime: 1 << 40, Data: []byte("moofmdat")}
	b, err := MarshalLive(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != LiveHeaderBytes+len(in.Camera)+len(in.Codec)+len(in.Data) {
		t.Errorf("frame is %d bytes", len(b))
	}
	out, err := UnmarshalLive(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Kind != in.Kind || out.Key != in.Key || out.Camera != in.Camera || out.Codec != in.Codec || out.Seq != in.Seq ||
		!out.Time.Equal(in.Time) || out.BaseTime != in.BaseTime || !bytes.Equal(out.Data, in.Data) {
		t.Errorf("round trip: %+v, want %+v", out, in)
	}
	if cam, ok := LiveCamera(b); !ok || cam != "north-gate" {
		t.Errorf("LiveCamera = %q, %v", cam, ok)
	}
	for _, bad := range [][]byte{nil, []byte("VL"), append([]byte("XL"), b[2:]...), b[:LiveHeaderBytes+3]} {
		if _, err := UnmarshalLive(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
	if _, err := MarshalLive(LiveFrame{Kind: LiveInit}); err == nil {
		t.Error("a frame without a camera marshalled")
	}
}
