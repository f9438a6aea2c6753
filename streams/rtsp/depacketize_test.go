package rtsp

import (
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

func h264Desc() *description.Session {
	return &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo,
		Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1,
			SPS: []byte{0x67, 0x4d, 0x00, 0x1e, 0x95, 0xa8, 0x28, 0x0f, 0x64}, PPS: []byte{0x68, 0xee, 0x3c, 0x80}}}}}}
}

func h265Desc() *description.Session {
	return &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo,
		Formats: []format.Format{&format.H265{PayloadTyp: 96}}}}}
}

// TestParameterSetsPrepended: cameras that send SPS/PPS only in the SDP
// still produce keyframes that decode on their own.
func TestParameterSetsPrepended(t *testing.T) {
	d, err := newDepacketizer(h264Desc(), &Stats{})
	if err != nil {
		t.Fatal(err)
	}
	// A P-slice before any keyframe is held back.
	au, _, _ := d.decode(&rtp.Packet{Header: rtp.Header{Marker: true, SequenceNumber: 1}, Payload: []byte{0x41, 0x9a, 0x01}})
	if au != nil {
		t.Fatal("unit before the first keyframe was passed on")
	}
	au, key, err := d.decode(&rtp.Packet{Header: rtp.Header{Marker: true, SequenceNumber: 2}, Payload: []byte{0x65, 0x88, 0x80}})
	if err != nil || !key || len(au) != 3 || au[0][0] != 0x67 || au[1][0] != 0x68 {
		t.Fatalf("IDR unit = %x key=%v err=%v, want SPS, PPS, IDR", au, key, err)
	}
}

func TestNoVideoIsAClearError(t *testing.T) {
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}}}}}
	_, err := newDepacketizer(desc, &Stats{})
	if err == nil || err.Error() != "rtsp: the camera offers no H.264 or H.265 video (offers G711)" {
		t.Fatalf("err = %v", err)
	}
}

// FuzzDepacketize feeds arbitrary RTP payloads, as a broken camera or an
// attacker on the camera network could send, through both depacketisers.
func FuzzDepacketize(f *testing.F) {
	f.Add([]byte{0x65, 0x88, 0x80}, true)
	f.Add([]byte{0x7c, 0x85, 0x88, 0x80}, false) // FU-A start
	f.Add([]byte{0x18, 0x00, 0x02, 0x67, 0x4d, 0x00, 0x02, 0x68, 0xee}, true)
	f.Add([]byte{0x26, 0x01, 0xaf, 0x06}, true) // H.265 IDR
	f.Add([]byte{0x62, 0x01, 0x93, 0xaf}, false)
	f.Fuzz(func(t *testing.T, payload []byte, marker bool) {
		for _, desc := range []*description.Session{h264Desc(), h265Desc()} {
			d, err := newDepacketizer(desc, &Stats{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				d.decode(&rtp.Packet{Header: rtp.Header{Marker: marker || i == 2, SequenceNumber: uint16(i)}, Payload: payload})
			}
		}
	})
}
