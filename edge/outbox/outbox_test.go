package outbox

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

func alert(i int) wire.Alert {
	return wire.Alert{ID: fmt.Sprintf("a%03d", i), EdgeID: "e", Source: "c", Kind: "motion", Severity: wire.Yellow, Time: time.Now().UTC()}
}

func TestOrderAckAndReopen(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := o.Changed()
	for i := range 10 {
		if err := o.Append(alert(i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-changed:
	default:
		t.Fatal("Append did not signal Changed")
	}
	if err := o.Append(alert(3)); err != nil { // duplicate: no-op
		t.Fatal(err)
	}
	if o.Len() != 10 {
		t.Fatalf("Len = %d, want 10", o.Len())
	}
	es, err := o.After(0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 || es[0].Alert.ID != "a000" || es[3].Alert.ID != "a003" {
		t.Fatalf("After(0,4) = %+v", es)
	}
	rest, _ := o.After(es[3].Seq, 100)
	if len(rest) != 6 || rest[0].Alert.ID != "a004" {
		t.Fatalf("After(%d) = %d entries", es[3].Seq, len(rest))
	}
	if err := o.Ack("a000", "a001", "nope", "a001"); err != nil {
		t.Fatal(err)
	}
	if o.Len() != 8 {
		t.Fatalf("Len after ack = %d, want 8", o.Len())
	}
	o.Close()

	// Reopen: what was not acknowledged is still there, in order, and new
	// alerts queue after it.
	o, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Len() != 8 {
		t.Fatalf("Len after reopen = %d, want 8", o.Len())
	}
	if err := o.Append(alert(10)); err != nil {
		t.Fatal(err)
	}
	all, _ := o.After(0, 100)
	if len(all) != 9 || all[0].Alert.ID != "a002" || all[8].Alert.ID != "a010" {
		t.Fatalf("after reopen: %d entries, first %s last %s", len(all), all[0].Alert.ID, all[len(all)-1].Alert.ID)
	}
}
