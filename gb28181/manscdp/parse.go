package manscdp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Root is the kind of MANSCDP document: its root element.
type Root string

// The four document kinds of Annex A.
const (
	RootQuery    Root = "Query"
	RootControl  Root = "Control"
	RootNotify   Root = "Notify"
	RootResponse Root = "Response"
)

// Command types (CmdType) of Annex A that an edge answers or sends.
const (
	CmdCatalog      = "Catalog"
	CmdDeviceInfo   = "DeviceInfo"
	CmdDeviceStatus = "DeviceStatus"
	CmdRecordInfo   = "RecordInfo"
	CmdAlarm        = "Alarm"
	CmdKeepalive    = "Keepalive"
	CmdConfigDown   = "ConfigDownload"
	CmdPresetQuery  = "PresetQuery"
	CmdMobilePos    = "MobilePosition"
	CmdDeviceCtrl   = "DeviceControl"
	CmdDeviceConfig = "DeviceConfig"
	CmdMediaStatus  = "MediaStatus"
	CmdBroadcast    = "Broadcast"
)

// MaxBody bounds the size of a body Parse accepts: real queries are a few
// hundred bytes, and a SIP message over UDP cannot carry more than 64 KiB.
const MaxBody = 64 << 10

// Message is a parsed MANSCDP document from a platform. Fields that the
// document does not carry are zero. Times are left as the platform wrote
// them (local time without zone, "2006-01-02T15:04:05"); ParseTime reads
// them in the platform's zone.
type Message struct {
	Root     Root
	CmdType  string
	SN       uint32
	DeviceID string
	// Charset is the charset the platform declared; answers use it.
	Charset Charset

	// Query RecordInfo (A.2.4.5).
	StartTime, EndTime string
	FilePath, Address  string
	Secrecy            int
	Type               string // time, alarm, manual, all
	RecorderID         string
	IndistinctQuery    int

	// Query/subscribe Alarm (A.2.4.6).
	StartAlarmPriority, EndAlarmPriority string
	AlarmMethod, AlarmType               string
	StartAlarmTime, EndAlarmTime         string

	// Control DeviceControl (A.2.3.1).
	PTZCmd    string
	TeleBoot  string // Boot
	RecordCmd string // Record, StopRecord
	GuardCmd  string // SetGuard, ResetGuard
	AlarmCmd  string // ResetAlarm
	IFameCmd  string // Send (request an I-frame)

	// Notify/Response fields a platform may send back (Result OK/ERROR).
	Result string
	Status string
}

// rawMessage is the XML shape of every root: encoding/xml matches child
// elements by name and ignores the ones a command does not use.
type rawMessage struct {
	XMLName            xml.Name
	CmdType            string `xml:"CmdType"`
	SN                 string `xml:"SN"`
	DeviceID           string `xml:"DeviceID"`
	StartTime          string `xml:"StartTime"`
	EndTime            string `xml:"EndTime"`
	FilePath           string `xml:"FilePath"`
	Address            string `xml:"Address"`
	Secrecy            string `xml:"Secrecy"`
	Type               string `xml:"Type"`
	RecorderID         string `xml:"RecorderID"`
	IndistinctQuery    string `xml:"IndistinctQuery"`
	StartAlarmPriority string `xml:"StartAlarmPriority"`
	EndAlarmPriority   string `xml:"EndAlarmPriority"`
	AlarmMethod        string `xml:"AlarmMethod"`
	AlarmType          string `xml:"AlarmType"`
	StartAlarmTime     string `xml:"StartAlarmTime"`
	EndAlarmTime       string `xml:"EndAlarmTime"`
	PTZCmd             string `xml:"PTZCmd"`
	TeleBoot           string `xml:"TeleBoot"`
	RecordCmd          string `xml:"RecordCmd"`
	GuardCmd           string `xml:"GuardCmd"`
	AlarmCmd           string `xml:"AlarmCmd"`
	IFameCmd           string `xml:"IFameCmd"`
	Result             string `xml:"Result"`
	Status             string `xml:"Status"`
}

// Parse reads a MANSCDP body (Query, Control, Notify or Response) in
// GB2312 or UTF-8. It checks what every command needs: a known root, a
// CmdType, a numeric SN and a 20-digit DeviceID.
func Parse(body []byte) (*Message, error) {
	if len(body) == 0 {
		return nil, errors.New("manscdp: empty body")
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("manscdp: body of %d bytes exceeds %d", len(body), MaxBody)
	}
	label := declaredCharset(body)
	cs, ok := normCharset(label)
	if !ok {
		return nil, fmt.Errorf("manscdp: unsupported charset %q (want GB2312 or UTF-8)", label)
	}
	var raw rawMessage
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.CharsetReader = charsetReader(body)
	// Platforms write entities and stray characters loosely; Strict=false
	// accepts e.g. a bare "&" in an Address.
	dec.Strict = false
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("manscdp: malformed XML: %w", err)
	}
	m := &Message{
		Root:               Root(raw.XMLName.Local),
		CmdType:            strings.TrimSpace(raw.CmdType),
		DeviceID:           strings.TrimSpace(raw.DeviceID),
		Charset:            cs,
		StartTime:          strings.TrimSpace(raw.StartTime),
		EndTime:            strings.TrimSpace(raw.EndTime),
		FilePath:           strings.TrimSpace(raw.FilePath),
		Address:            strings.TrimSpace(raw.Address),
		Type:               strings.TrimSpace(raw.Type),
		RecorderID:         strings.TrimSpace(raw.RecorderID),
		StartAlarmPriority: strings.TrimSpace(raw.StartAlarmPriority),
		EndAlarmPriority:   strings.TrimSpace(raw.EndAlarmPriority),
		AlarmMethod:        strings.TrimSpace(raw.AlarmMethod),
		AlarmType:          strings.TrimSpace(raw.AlarmType),
		StartAlarmTime:     strings.TrimSpace(raw.StartAlarmTime),
		EndAlarmTime:       strings.TrimSpace(raw.EndAlarmTime),
		PTZCmd:             strings.TrimSpace(raw.PTZCmd),
		TeleBoot:           strings.TrimSpace(raw.TeleBoot),
		RecordCmd:          strings.TrimSpace(raw.RecordCmd),
		GuardCmd:           strings.TrimSpace(raw.GuardCmd),
		AlarmCmd:           strings.TrimSpace(raw.AlarmCmd),
		IFameCmd:           strings.TrimSpace(raw.IFameCmd),
		Result:             strings.TrimSpace(raw.Result),
		Status:             strings.TrimSpace(raw.Status),
	}
	switch m.Root {
	case RootQuery, RootControl, RootNotify, RootResponse:
	default:
		return nil, fmt.Errorf("manscdp: root element <%s>, want Query, Control, Notify or Response", raw.XMLName.Local)
	}
	if m.CmdType == "" {
		return nil, fmt.Errorf("manscdp: <%s> without CmdType", m.Root)
	}
	sn := strings.TrimSpace(raw.SN)
	if sn == "" {
		return nil, fmt.Errorf("manscdp: %s %s without SN", m.Root, m.CmdType)
	}
	n, err := strconv.ParseUint(sn, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("manscdp: %s %s: SN %q is not a number", m.Root, m.CmdType, sn)
	}
	m.SN = uint32(n)
	if _, err := ParseID(m.DeviceID); err != nil {
		return nil, fmt.Errorf("manscdp: %s %s: DeviceID: %w", m.Root, m.CmdType, err)
	}
	if m.Secrecy, err = optInt(raw.Secrecy); err != nil {
		return nil, fmt.Errorf("manscdp: %s %s: Secrecy: %w", m.Root, m.CmdType, err)
	}
	if m.IndistinctQuery, err = optInt(raw.IndistinctQuery); err != nil {
		return nil, fmt.Errorf("manscdp: %s %s: IndistinctQuery: %w", m.Root, m.CmdType, err)
	}
	return m, nil
}

func optInt(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

// TimeLayout is the MANSCDP date-time: local time of the platform's zone,
// without zone designator (Annex A, "dateTime").
const TimeLayout = "2006-01-02T15:04:05"

// ParseTime reads a MANSCDP time in loc. Some platforms add a zone or
// fractions, or a space instead of T; those are accepted too.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{TimeLayout, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("manscdp: time %q is not YYYY-MM-DDThh:mm:ss", s)
}

// FormatTime writes t as a MANSCDP time in loc.
func FormatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format(TimeLayout)
}
