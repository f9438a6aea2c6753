package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// An export's manifest names the next part only where the camera
// changed codec or picture size, and only within the range asked for:
// a next part that does not move on would be asked for forever.
func TestExportManifestNext(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ok := ExportManifest{Camera: "gate", From: t0.Add(5 * time.Second), To: t0.Add(15 * time.Second), Start: t0.Add(4 * time.Second),
		End: t0.Add(10 * time.Second), Size: 10, ChunkSize: 4, Chunks: []string{"a", "b", "c"}, SHA256: strings.Repeat("0", 64)}
	b, _ := json.Marshal(ok)
	if strings.Contains(string(b), `"next"`) {
		t.Errorf("a manifest without a change names a next part: %s", b)
	}
	for _, tc := range []struct {
		next time.Duration
		ok   bool
	}{{0, true}, {10 * time.Second, true}, {5 * time.Second, false}, {4 * time.Second, false}, {15 * time.Second, false}, {20 * time.Second, false}} {
		m := ok
		if tc.next != 0 {
			m.Next = t0.Add(tc.next)
		}
		if err := m.Check(); (err == nil) != tc.ok {
			t.Errorf("next at %v: %v, want ok=%v", tc.next, err, tc.ok)
		}
		var back ExportManifest
		b, _ := json.Marshal(m)
		if err := json.Unmarshal(b, &back); err != nil || !back.Next.Equal(m.Next) {
			t.Errorf("next at %v: %s round-trips to %v (%v)", tc.next, b, back.Next, err)
		}
	}
}
