package manscdp

import (
	"fmt"
)

// IDType is the type code in digits 11-13 of a 20-digit GB/T 28181 ID
// (Annex D): the kind of equipment or system the ID names.
type IDType int

// Type codes of Annex D (D.1, table D.2) that an edge uses or meets.
const (
	TypeDVR             IDType = 111
	TypeVideoServer     IDType = 112
	TypeEncoder         IDType = 113
	TypeDecoder         IDType = 114
	TypeVideoSwitch     IDType = 115
	TypeAudioSwitch     IDType = 116
	TypeAlarmController IDType = 117
	TypeNVR             IDType = 118
	TypeCamera          IDType = 131
	TypeIPC             IDType = 132
	TypeDisplay         IDType = 133
	TypeAlarmInput      IDType = 134
	TypeAlarmOutput     IDType = 135
	TypeVoiceInput      IDType = 136
	TypeVoiceOutput     IDType = 137
	TypeMobileTerminal  IDType = 138
	TypeCenterServer    IDType = 200
	TypeWebServer       IDType = 201
	TypeMediaServer     IDType = 202
	TypeProxyServer     IDType = 203
	TypeSecurityServer  IDType = 204
	TypeAlarmServer     IDType = 205
	TypeDatabaseServer  IDType = 206
	TypeGISServer       IDType = 207
	TypeManageServer    IDType = 208
	TypeGatewayServer   IDType = 209
	TypeStorageServer   IDType = 210
	TypeSignalingServer IDType = 211
	TypeCenterUser      IDType = 300
	TypeEndUser         IDType = 400
	TypeVirtualOrg      IDType = 216
	TypeBusinessGroup   IDType = 215
)

var typeNames = map[IDType]string{
	TypeDVR: "DVR", TypeVideoServer: "video server", TypeEncoder: "encoder", TypeDecoder: "decoder",
	TypeVideoSwitch: "video switch", TypeAudioSwitch: "audio switch", TypeAlarmController: "alarm controller",
	TypeNVR: "NVR", TypeCamera: "camera", TypeIPC: "network camera (IPC)", TypeDisplay: "display",
	TypeAlarmInput: "alarm input", TypeAlarmOutput: "alarm output", TypeVoiceInput: "voice input",
	TypeVoiceOutput: "voice output", TypeMobileTerminal: "mobile terminal", TypeCenterServer: "central signalling control server (SIP platform)",
	TypeWebServer: "web server", TypeMediaServer: "media server", TypeProxyServer: "proxy server",
	TypeSecurityServer: "security server", TypeAlarmServer: "alarm server", TypeDatabaseServer: "database server",
	TypeGISServer: "GIS server", TypeManageServer: "management server", TypeGatewayServer: "gateway",
	TypeStorageServer: "storage server", TypeSignalingServer: "signalling security gateway",
	TypeBusinessGroup: "business group", TypeVirtualOrg: "virtual organisation",
	TypeCenterUser: "centre user", TypeEndUser: "end user",
}

// String names the type ("network camera (IPC)"), or "type NNN" for codes
// this package does not name.
func (t IDType) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %03d", int(t))
}

// IDLen is the length of every GB/T 28181 device, channel and platform ID.
const IDLen = 20

// ParseID checks that id is a 20-digit GB/T 28181 ID and returns its type
// code (digits 11-13). The error says what is wrong in words an installer
// can act on.
func ParseID(id string) (IDType, error) {
	if id == "" {
		return 0, fmt.Errorf("empty GB ID (want 20 digits, e.g. 34020000001320000001)")
	}
	if len(id) != IDLen {
		return 0, fmt.Errorf("GB ID %q has %d characters, want 20 digits", id, len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return 0, fmt.Errorf("GB ID %q has a non-digit %q at position %d", id, id[i], i+1)
		}
	}
	t := IDType(int(id[10]-'0')*100 + int(id[11]-'0')*10 + int(id[12]-'0'))
	return t, nil
}

// ValidateID checks id like ParseID and, when want is not empty, that its
// type code is one of want: a camera channel must be 131 or 132, an alarm
// input 134, a platform 200.
func ValidateID(id string, want ...IDType) error {
	t, err := ParseID(id)
	if err != nil {
		return err
	}
	if len(want) == 0 {
		return nil
	}
	for _, w := range want {
		if t == w {
			return nil
		}
	}
	names := ""
	for i, w := range want {
		if i > 0 {
			names += " or "
		}
		names += fmt.Sprintf("%03d (%s)", int(w), w)
	}
	return fmt.Errorf("GB ID %q has type code %03d (%s) in digits 11-13, want %s", id, int(t), t, names)
}

// Domain returns the SIP domain an ID belongs to by convention: its first
// ten digits.
func Domain(id string) string {
	if len(id) < 10 {
		return ""
	}
	return id[:10]
}
