package gates

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var payloadNow = time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)

func TestParsePayload(t *testing.T) {
	evs, err := ParsePayload([]byte(`{"id":"e1","gate":"north-gate","device":"reader-1","type":"granted","credential":"card:04A2","time":"2026-03-10T11:59:58+08:00"}`), payloadNow)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{ID: "e1", Gate: "north-gate", Device: "reader-1", Kind: Granted, Credential: "card:04A2", Time: payloadNow.Add(-2 * time.Second)}
	if len(evs) != 1 || evs[0] != want {
		t.Fatalf("got %+v", evs)
	}
	evs, err = ParsePayload([]byte(`{"events":[{"id":"a","gate":"g","type":"alarm","sensor":"smoke"},{"id":"b","gate":"g","type":"heartbeat"}]}`), payloadNow)
	if err != nil || len(evs) != 2 || evs[0].Sensor != Smoke || !evs[1].Time.Equal(payloadNow) {
		t.Fatalf("batch: %v %+v", err, evs)
	}
	// Round trip through the encoder the simulator uses.
	b, err := MarshalPayload(evs...)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePayload(b, payloadNow)
	if err != nil || len(back) != 2 || back[0] != evs[0] {
		t.Fatalf("round trip: %v %+v (%s)", err, back, b)
	}
}

func TestParsePayloadRejects(t *testing.T) {
	tests := []struct {
		name, body string
		want       error
	}{
		{"not json", `gate opened`, ErrMalformed},
		{"array", `[]`, ErrMalformed},
		{"unknown field", `{"id":"a","gate":"g","type":"opened","door":"x"}`, ErrMalformed},
		{"trailing data", `{"id":"a","gate":"g","type":"opened"} {}`, ErrMalformed},
		{"empty object", `{}`, ErrMalformed},
		{"empty batch", `{"events":[]}`, ErrMalformed},
		{"both forms", `{"id":"a","gate":"g","type":"opened","events":[{"id":"b","gate":"g","type":"opened"}]}`, ErrMalformed},
		{"bad time", `{"id":"a","gate":"g","type":"opened","time":"yesterday"}`, ErrMalformed},
		{"no id", `{"gate":"g","type":"opened"}`, ErrInvalid},
		{"bad gate", `{"id":"a","gate":"North Gate","type":"opened"}`, ErrInvalid},
		{"unknown type", `{"id":"a","gate":"g","type":"exploded"}`, ErrInvalid},
		{"alarm without sensor", `{"id":"a","gate":"g","type":"alarm"}`, ErrInvalid},
		{"unknown sensor", `{"id":"a","gate":"g","type":"alarm","sensor":"fire"}`, ErrInvalid},
		{"sensor on a door", `{"id":"a","gate":"g","type":"opened","sensor":"smoke"}`, ErrInvalid},
		{"credential on a button", `{"id":"a","gate":"g","type":"button","credential":"x"}`, ErrInvalid},
		{"arming is for keypads", `{"id":"a","gate":"g","type":"arm"}`, ErrInvalid},
		{"disarming is for keypads", `{"id":"a","gate":"g","type":"disarm"}`, ErrInvalid},
		{"from the future", `{"id":"a","gate":"g","type":"opened","time":"2026-03-10T04:06:00Z"}`, ErrInvalid},
		{"too old", `{"id":"a","gate":"g","type":"opened","time":"2026-03-09T03:59:00Z"}`, ErrInvalid},
		{"long id", `{"id":"` + strings.Repeat("x", 129) + `","gate":"g","type":"opened"}`, ErrInvalid},
		{"too many", `{"events":[` + strings.Repeat(`{"id":"a","gate":"g","type":"opened"},`, MaxBatch) + `{"id":"a","gate":"g","type":"opened"}]}`, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePayload([]byte(tc.body), payloadNow)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzParsePayload: whatever a controller sends, the parser returns an
// error or events that pass Validate, within the time bounds, and never
// panics.
func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(`{"id":"e1","gate":"north-gate","type":"opened","time":"2026-03-10T04:00:00Z"}`))
	f.Add([]byte(`{"events":[{"id":"a","gate":"g","type":"alarm","sensor":"gas"},{"id":"b","gate":"g","type":"granted","credential":"c"}]}`))
	f.Add([]byte(`{"id":"x","gate":"g","type":"button","device":"booth"}`))
	f.Add([]byte(`{"events":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := ParsePayload(data, payloadNow)
		if err != nil {
			if len(evs) != 0 {
				t.Fatal("events returned with an error")
			}
			return
		}
		if len(evs) == 0 || len(evs) > MaxBatch {
			t.Fatalf("%d events", len(evs))
		}
		for _, ev := range evs {
			if err := ev.Validate(); err != nil || ev.ID == "" {
				t.Fatalf("accepted invalid event %+v: %v", ev, err)
			}
			if ev.Time.Location() != time.UTC {
				t.Fatal("time not UTC")
			}
		}
	})
}
