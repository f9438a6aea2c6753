package main

import (
	"encoding/json"
	"testing"
)

// quickParse agrees with encoding/json on central's messages.
func TestQuickParse(t *testing.T) {
	for _, msg := range []string{
		`{"type":"alert","seq":42,"alert":{"id":"e0001-0000007","edge_id":"e0001","site_id":"s","source":"c","kind":"motion","severity":"red","time":"2026-11-22T06:30:06.123456789Z","summary":"x"}}`,
		`{"type":"update","seq":43,"alert":{"id":"e0001-0000007"}}`,
		`{"type":"ready","seq":43,"sites":[]}`,
	} {
		q, ok := quickParse([]byte(msg))
		var j consoleMsg
		if err := json.Unmarshal([]byte(msg), &j); err != nil || !ok {
			t.Fatalf("%s: quick ok %v, json %v", msg, ok, err)
		}
		if q.Type != j.Type || q.Seq != j.Seq || (j.Type == "alert" && (q.Alert.ID != j.Alert.ID || !q.Alert.Time.Equal(j.Alert.Time))) {
			t.Fatalf("%s: quick %+v json %+v", msg, q, j)
		}
	}
	if _, ok := quickParse([]byte(`{"seq":1,"type":"alert"}`)); ok {
		t.Fatal("other field order accepted")
	}
}
