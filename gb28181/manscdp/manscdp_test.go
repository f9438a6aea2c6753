package manscdp

import (
	"bytes"
	"encoding/xml"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
)

const devID = "34020000001180000001" // an NVR-type edge (118)

func gb(t testing.TB, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseQueries(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want Message
	}{
		{"catalog GB2312", []byte(`<?xml version="1.0" encoding="GB2312"?>
<Query>
<CmdType>Catalog</CmdType>
<SN>17430</SN>
<DeviceID>34020000001180000001</DeviceID>
</Query>`), Message{Root: RootQuery, CmdType: CmdCatalog, SN: 17430, DeviceID: devID, Charset: GB2312}},
		{"device info UTF-8, no declaration", []byte(`<Query><CmdType>DeviceInfo</CmdType><SN> 7 </SN><DeviceID>34020000001180000001</DeviceID></Query>`),
			Message{Root: RootQuery, CmdType: CmdDeviceInfo, SN: 7, DeviceID: devID, Charset: UTF8}},
		{"record info", []byte(`<?xml version="1.0" encoding="UTF-8"?>
<Query><CmdType>RecordInfo</CmdType><SN>3</SN><DeviceID>34020000001320000001</DeviceID>
<StartTime>2026-12-07T00:00:00</StartTime><EndTime>2026-12-07T23:59:59</EndTime><Secrecy>0</Secrecy><Type>all</Type></Query>`),
			Message{Root: RootQuery, CmdType: CmdRecordInfo, SN: 3, DeviceID: "34020000001320000001", Charset: UTF8,
				StartTime: "2026-12-07T00:00:00", EndTime: "2026-12-07T23:59:59", Type: "all"}},
		{"alarm subscription", []byte(`<?xml version="1.0" encoding="GB2312"?>
<Query><CmdType>Alarm</CmdType><SN>9</SN><DeviceID>34020000001180000001</DeviceID>
<StartAlarmPriority>1</StartAlarmPriority><EndAlarmPriority>4</EndAlarmPriority><AlarmMethod>0</AlarmMethod></Query>`),
			Message{Root: RootQuery, CmdType: CmdAlarm, SN: 9, DeviceID: devID, Charset: GB2312,
				StartAlarmPriority: "1", EndAlarmPriority: "4", AlarmMethod: "0"}},
		{"guard control", []byte(`<?xml version="1.0"?><Control><CmdType>DeviceControl</CmdType><SN>11</SN>
<DeviceID>34020000001340000001</DeviceID><GuardCmd>SetGuard</GuardCmd></Control>`),
			Message{Root: RootControl, CmdType: CmdDeviceCtrl, SN: 11, DeviceID: "34020000001340000001", Charset: UTF8, GuardCmd: "SetGuard"}},
		{"bare ampersand in address", []byte(`<Query><CmdType>RecordInfo</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><Address>A & B</Address></Query>`),
			Message{Root: RootQuery, CmdType: CmdRecordInfo, SN: 1, DeviceID: "34020000001320000001", Charset: UTF8, Address: "A & B"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if *m != tc.want {
				t.Errorf("got %+v\nwant %+v", *m, tc.want)
			}
		})
	}
}

// A platform that writes GB2312 Chinese and one that declares GB2312 but
// sends UTF-8 (seen in the field) both decode to the same text.
func TestParseChineseCharsets(t *testing.T) {
	const addr = "村口东侧大门"
	gbBody := append(append([]byte(`<?xml version="1.0" encoding="GB2312"?><Query><CmdType>RecordInfo</CmdType><SN>5</SN><DeviceID>34020000001320000001</DeviceID><Address>`),
		gb(t, addr)...), []byte(`</Address></Query>`)...)
	utf8Mislabeled := []byte(`<?xml version="1.0" encoding="GB2312"?><Query><CmdType>RecordInfo</CmdType><SN>5</SN><DeviceID>34020000001320000001</DeviceID><Address>` + addr + `</Address></Query>`)
	for name, body := range map[string][]byte{"GB2312": gbBody, "UTF-8 declared GB2312": utf8Mislabeled} {
		m, err := Parse(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Address != addr || m.Charset != GB2312 {
			t.Errorf("%s: address %q charset %s, want %q GB2312", name, m.Address, m.Charset, addr)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ body, want string }{
		{``, "empty body"},
		{`<Query><CmdType>Catalog</CmdType>`, "malformed XML"},
		{`<Request><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>34020000001180000001</DeviceID></Request>`, "root element <Request>"},
		{`<Query><SN>1</SN><DeviceID>34020000001180000001</DeviceID></Query>`, "without CmdType"},
		{`<Query><CmdType>Catalog</CmdType><DeviceID>34020000001180000001</DeviceID></Query>`, "without SN"},
		{`<Query><CmdType>Catalog</CmdType><SN>x1</SN><DeviceID>34020000001180000001</DeviceID></Query>`, `SN "x1" is not a number`},
		{`<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>3402000000118000001</DeviceID></Query>`, "has 19 characters, want 20 digits"},
		{`<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>3402000000118000000A</DeviceID></Query>`, "non-digit 'A' at position 20"},
		{`<?xml version="1.0" encoding="Big5"?><Query/>`, `unsupported charset "Big5"`},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.body, err, tc.want)
		}
	}
}

func TestValidateID(t *testing.T) {
	if err := ValidateID("34020000001320000001", TypeIPC, TypeCamera); err != nil {
		t.Error(err)
	}
	err := ValidateID("34020000001340000001", TypeIPC, TypeCamera)
	if err == nil || !strings.Contains(err.Error(), "type code 134 (alarm input)") || !strings.Contains(err.Error(), "want 132 (network camera (IPC)) or 131 (camera)") {
		t.Errorf("alarm input as camera: %v", err)
	}
	if typ, err := ParseID("34020000002000000001"); err != nil || typ != TypeCenterServer {
		t.Errorf("platform ID: %v %v", typ, err)
	}
}

func lonlat(v float64) *float64 { return &v }

func cameras(n int) []CatalogItem {
	var items []CatalogItem
	for i := 0; i < n; i++ {
		id := []byte("34020000001320000000")
		id[18] = byte('0' + i/10)
		id[19] = byte('0' + i%10)
		items = append(items, CatalogItem{
			DeviceID: string(id), Name: "村口摄像机", Manufacturer: "Vigil", Model: "edge", Owner: "Owner",
			CivilCode: "3402000000", Address: "村口", ParentID: devID, RegisterWay: 1, Status: StatusOn,
			Longitude: lonlat(117.2272), Latitude: lonlat(31.8206),
		})
	}
	return items
}

// iconv (glibc) is the independent judge of our GB2312 bytes.
func iconvToUTF8(t *testing.T, b []byte) string {
	t.Helper()
	cmd := exec.Command("iconv", "-f", "GB2312", "-t", "UTF-8")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("iconv: %v", err)
	}
	return string(out)
}

func TestCatalogSplitGB2312(t *testing.T) {
	items := cameras(5)
	bodies, err := CatalogResponses(Header{SN: 42, DeviceID: devID, Charset: GB2312}, items, UDPSplit)
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) < 2 {
		t.Fatalf("5 items in %d UDP bodies, want them split", len(bodies))
	}
	total := 0
	for _, b := range bodies {
		if len(b) > UDPSplit.MaxBytes {
			t.Errorf("body of %d bytes over %d", len(b), UDPSplit.MaxBytes)
		}
		text := iconvToUTF8(t, b)
		if !strings.HasPrefix(text, `<?xml version="1.0" encoding="GB2312"?>`) || !strings.Contains(text, "<Name>村口摄像机</Name>") {
			t.Fatalf("body not GB2312 with the Chinese name:\n%s", text)
		}
		var r struct {
			SumNum     int `xml:"SumNum"`
			DeviceList struct {
				Num   int `xml:"Num,attr"`
				Items []struct {
					DeviceID  string  `xml:"DeviceID"`
					Status    string  `xml:"Status"`
					Longitude float64 `xml:"Longitude"`
				} `xml:"Item"`
			} `xml:"DeviceList"`
		}
		dec := xml.NewDecoder(strings.NewReader(strings.Replace(text, "GB2312", "UTF-8", 1)))
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.SumNum != 5 || r.DeviceList.Num != len(r.DeviceList.Items) || r.DeviceList.Items[0].Status != "ON" || r.DeviceList.Items[0].Longitude != 117.2272 {
			t.Errorf("body %+v", r)
		}
		total += r.DeviceList.Num
		m, err := Parse(b)
		if err != nil || m.Root != RootResponse || m.SN != 42 || m.DeviceID != devID {
			t.Errorf("Parse(own response) = %+v, %v", m, err)
		}
	}
	if total != 5 {
		t.Errorf("items over all bodies %d, want 5", total)
	}
	one, err := CatalogResponses(Header{SN: 1, DeviceID: devID, Charset: UTF8}, items, TCPSplit)
	if err != nil || len(one) != 1 {
		t.Errorf("TCP split: %d bodies, %v", len(one), err)
	}
	empty, err := CatalogResponses(Header{SN: 1, DeviceID: devID}, nil, UDPSplit)
	if err != nil || len(empty) != 1 || !bytes.Contains(empty[0], []byte("<SumNum>0</SumNum>")) {
		t.Errorf("empty catalog: %q %v", empty, err)
	}
	bad := cameras(1)
	bad[0].Status = "online"
	if _, err := CatalogResponses(Header{SN: 1, DeviceID: devID}, bad, UDPSplit); err == nil || !strings.Contains(err.Error(), `Status "online"`) {
		t.Errorf("bad status: %v", err)
	}
}

func TestOtherBodies(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	at := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	h := Header{SN: 8, DeviceID: devID, Charset: UTF8}
	check := func(name string, b []byte, err error, want ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				t.Errorf("%s: no %q in\n%s", name, w, b)
			}
		}
	}
	b, err := Keepalive(h, true)
	check("keepalive", b, err, "<Notify>", "<CmdType>Keepalive</CmdType>", "<SN>8</SN>", "<Status>OK</Status>")
	b, err = DeviceInfoResponse(h, DeviceInfo{DeviceName: "edge", Manufacturer: "Vigil", Model: "edge", Firmware: "1.0", Channel: 3})
	check("device info", b, err, "<Result>OK</Result>", "<Channel>3</Channel>")
	b, err = DeviceStatusResponse(h, DeviceStatus{Online: true, OK: true, Encoding: true, Time: at, Loc: loc,
		Alarms: []AlarmStatus{{DeviceID: "34020000001340000001", DutyStatus: DutyOnDuty}}})
	check("device status", b, err, "<Online>ONLINE</Online>", "<DeviceTime>2026-12-08T06:00:00</DeviceTime>", `<Alarmstatus Num="1">`, "<DutyStatus>ONDUTY</DutyStatus>", "<Record>OFF</Record>")
	b, err = AlarmNotify(h, Alarm{DeviceID: "34020000001340000001", Priority: PriorityFirst, Method: MethodVideo, Type: VideoIntrusion, EventType: 1, Time: at, Description: "gate forced"}, loc)
	check("alarm", b, err, "<AlarmPriority>1</AlarmPriority>", "<AlarmMethod>5</AlarmMethod>", "<AlarmTime>2026-12-08T06:00:00</AlarmTime>", "<AlarmType>6</AlarmType>", "<EventType>1</EventType>")
	if _, err := AlarmNotify(h, Alarm{DeviceID: "34020000001340000001", Priority: 5, Method: MethodDevice}, loc); err == nil {
		t.Error("priority 5 accepted")
	}
	rec := []RecordItem{NewRecordItem("34020000001320000001", "gate", at, at.Add(time.Minute), RecordAlarm, loc)}
	bodies, err := RecordInfoResponses(Header{SN: 9, DeviceID: "34020000001320000001"}, "gate", rec, TCPSplit)
	if err != nil || len(bodies) != 1 {
		t.Fatal(err)
	}
	check("record info", bodies[0], nil, "<SumNum>1</SumNum>", `<RecordList Num="1">`, "<StartTime>2026-12-08T06:00:00</StartTime>", "<EndTime>2026-12-08T06:01:00</EndTime>", "<Type>alarm</Type>")
	got, err := ParseTime("2026-12-08T06:00:00", loc)
	if err != nil || !got.Equal(at) {
		t.Errorf("ParseTime = %v %v, want %v", got, err, at)
	}
}
