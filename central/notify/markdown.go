package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Chat-robot messages. The formats are the vendors' own:
//
//   - WeCom group robot ("群机器人配置说明",
//     developer.work.weixin.qq.com/document/path/91770): POST
//     {"msgtype":"markdown","markdown":{"content":"…"}} to the robot's
//     webhook URL (…/cgi-bin/webhook/send?key=…); content at most 4096
//     bytes of UTF-8; it answers {"errcode":0,"errmsg":"ok"}. Its markdown
//     is a subset: headings, bold, links, quotes, <font color="warning">.
//   - DingTalk custom robot ("自定义机器人发送群消息",
//     open.dingtalk.com/document/robots/custom-robot-access and
//     …/document/orgapp/message-type): POST
//     {"msgtype":"markdown","markdown":{"title":"…","text":"…"}}; title is
//     the preview in the chat list; lines break on "  \n"; answers
//     {"errcode":0,"errmsg":"ok"}. A robot with keyword security only
//     accepts messages containing one of its keywords: every message here
//     contains "Vigil".
//   - Both allow about 20 messages a minute per robot; more are refused
//     with an errcode and retried by the notifier. Use min_severity to keep
//     a busy site under that.

// wecomMaxContent is WeCom's limit on markdown.content, in bytes.
const wecomMaxContent = 4096

func wecomBody(e Event) ([]byte, error) {
	_, text := message(e, "\n")
	return json.Marshal(map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"content": truncateUTF8(text, wecomMaxContent)},
	})
}

func dingtalkBody(e Event) ([]byte, error) {
	title, text := message(e, "  \n")
	return json.Marshal(map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"title": title, "text": text},
	})
}

var (
	severityZH   = map[string]string{SeverityRed: "红色", SeverityYellow: "黄色", SeverityGreen: "绿色"}
	severityMark = map[string]string{SeverityRed: "🔴", SeverityYellow: "🟡", SeverityGreen: "🟢"}
	kindZH       = map[string]string{
		"motion": "移动侦测", "forced": "强行开门", "held": "门长时间未关", "sos": "紧急求助",
		"tamper": "防拆/遮挡", "offline": "设备离线", "intrusion": "入侵", "line": "越线",
		"perimeter.crossing": "越界", "perimeter.loiter": "徘徊",
	}
	stateZH = map[string]string{
		StateNew: "新告警", "raised": "新告警", StateAcknowledged: "已确认", StateDispatched: "已派警",
		StateResolved: "已处理", StateClosed: "已关闭",
	}
	typeHead = map[string]string{
		TypeNew: "New alert 新告警", TypeUpdate: "Alert update 告警更新", TypeState: "Alert %s 告警%s",
		TypeEscalated: "ESCALATED: not acknowledged 升级：未及时确认",
	}
)

// message is the title and markdown text of a chat message for e, lines
// joined with br.
func message(e Event, br string) (title, text string) {
	sev := strings.ToUpper(e.Severity)
	head := typeHead[e.Type]
	switch e.Type {
	case TypeState:
		head = fmt.Sprintf(head, e.State, orRaw(stateZH, e.State))
	case "":
		head = "Alert 告警"
	default:
		if head == "" {
			head = "Alert " + e.Type
		}
	}
	title = fmt.Sprintf("Vigil %s %s · %s · %s", severityMark[e.Severity], sev, e.Kind, e.Site)
	var b []string
	b = append(b, fmt.Sprintf("### Vigil %s %s %s", severityMark[e.Severity], sev, head))
	b = append(b, fmt.Sprintf("**Severity 级别:** %s %s告警 (priority %d)", sev, severityZH[e.Severity], e.Priority))
	b = append(b, fmt.Sprintf("**Kind 类型:** %s %s", e.Kind, kindZH[e.Kind]))
	b = append(b, fmt.Sprintf("**Site 站点:** %s", e.Site))
	if e.Source != "" || e.Edge != "" {
		src := e.Source
		if e.Edge != "" {
			src += " (edge " + e.Edge + ")"
		}
		b = append(b, fmt.Sprintf("**Source 来源:** %s", strings.TrimSpace(src)))
	}
	state := fmt.Sprintf("**State 状态:** %s %s", e.State, orRaw(stateZH, e.State))
	if e.By != "" {
		state += " · by " + e.By
	}
	b = append(b, state)
	b = append(b, fmt.Sprintf("**Time 时间:** %s", when(e.Time, e.TimeZone)))
	if !e.StateTime.IsZero() && !e.StateTime.Equal(e.Time) {
		b = append(b, fmt.Sprintf("**Changed 变更:** %s", when(e.StateTime, e.TimeZone)))
	}
	if e.Count > 1 {
		b = append(b, fmt.Sprintf("**Count 次数:** %d", e.Count))
	}
	if e.Summary != "" {
		b = append(b, "> "+oneLine(e.Summary))
	}
	if e.SummaryZH != "" {
		b = append(b, "> "+oneLine(e.SummaryZH))
	}
	if e.SnapshotURL != "" {
		b = append(b, fmt.Sprintf("[Open in console 在控制台查看](%s)", e.SnapshotURL))
	}
	b = append(b, fmt.Sprintf("<font color=\"comment\">alert %s · seq %d</font>", e.AlertID, e.Seq))
	return title, strings.Join(b, br)
}

// when formats t in UTC and, if zone names a known IANA zone, in the
// site's local time.
func when(t time.Time, zone string) string {
	s := t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	if zone == "" {
		return s
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return s
	}
	return s + " (" + t.In(loc).Format("2006-01-02 15:04:05") + " " + zone + ")"
}

func orRaw(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return ""
}

// oneLine keeps a summary from breaking the message's layout.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncateUTF8 cuts s to at most n bytes on a character boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "…"
	s = s[:n-len(more)]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + more
}
