package manscdp

import (
	"strings"
	"testing"
)

// FuzzParseQuery feeds Parse what a platform (or anyone who can reach the
// SIP port) may send. Parse must not panic, and what it accepts must hold
// the invariants the device relies on.
func FuzzParseQuery(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0" encoding="GB2312"?><Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>34020000001180000001</DeviceID></Query>`))
	f.Add([]byte(`<Query><CmdType>RecordInfo</CmdType><SN>3</SN><DeviceID>34020000001320000001</DeviceID><StartTime>2026-12-07T00:00:00</StartTime></Query>`))
	f.Add([]byte(`<Control><CmdType>DeviceControl</CmdType><SN>1</SN><DeviceID>34020000001340000001</DeviceID><GuardCmd>SetGuard</GuardCmd></Control>`))
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"GB2312\"?><Query><CmdType>RecordInfo</CmdType><SN>5</SN><DeviceID>34020000001320000001</DeviceID><Address>\xb4\xe5</Address></Query>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body)
		if err != nil {
			return
		}
		if m.CmdType == "" || len(m.DeviceID) != IDLen || strings.Trim(m.DeviceID, "0123456789") != "" {
			t.Fatalf("accepted %+v", m)
		}
		if m.Charset != UTF8 && m.Charset != GB2312 {
			t.Fatalf("charset %q", m.Charset)
		}
	})
}
