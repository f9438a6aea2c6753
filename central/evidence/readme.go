package evidence

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// readme is README.txt: how to play and how to verify, in Chinese and
// English, with this bundle's case number, cameras and key fingerprint.
func readme(m *Manifest) []byte {
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	p("Vigil 视频证据包 / Vigil video evidence bundle\r\n")
	p("================================================\r\n\r\n")
	p("案件编号 / Case number:   %s\r\n", m.CaseNumber)
	p("证据包编号 / Bundle ID:   %s\r\n", m.BundleID)
	p("导出时间 / Exported at:   %s UTC\r\n", m.ExportedAt.Format("2006-01-02 15:04:05"))
	p("申请人 / Requested by:    %s (%s)\r\n", m.Requester.User, m.Requester.Role)
	p("签名公钥指纹 / Signing key SHA-256 fingerprint:\r\n    %s\r\n\r\n", m.SigningKeyFingerprint)

	readmeFiles(&b, m)
	b.WriteString(readmeHowTo)
	return []byte(strings.ReplaceAll(strings.ReplaceAll(b.String(), "\r\n", "\n"), "\n", "\r\n"))
}

// readmeFiles lists the bundle's members, camera by camera.
func readmeFiles(b *strings.Builder, m *Manifest) {
	p := func(f string, a ...any) { fmt.Fprintf(b, f, a...) }
	p("文件 / Files\r\n------------\r\n")
	parts, part := map[string]int{}, map[string]int{}
	for _, c := range m.Cameras {
		parts[c.EdgeID+"\x00"+c.CameraID]++
	}
	for _, c := range m.Cameras {
		p("%s  %s / %s / %s\r\n", c.Video, c.SiteName, c.EntranceName, c.CameraName)
		p("    %s — %s UTC (%s, %d×%d, %d frames)\r\n", c.Actual.Start.Format("2006-01-02 15:04:05.000"),
			c.Actual.End.Format("15:04:05.000"), strings.ToUpper(c.Codec), c.Width, c.Height, c.Frames)
		p("    告警 %d 条，门禁事件 %d 条 / %d alerts, %d gate events%s (manifest.json)\r\n",
			len(c.Alerts), len(c.GateEvents), len(c.Alerts), len(c.GateEvents), eventKinds(c.GateEvents))
		if k := c.EdgeID + "\x00" + c.CameraID; parts[k] > 1 {
			part[k]++
			p("    第 %d/%d 段：摄像机在此时间段内更换了编码或画面尺寸 / part %d of %d: the camera changed codec or picture size in the range\r\n",
				part[k], parts[k], part[k], parts[k])
		}
		if c.ContactSheet != "" {
			p("%s  缩略图 / contact sheet\r\n", c.ContactSheet)
		} else {
			p("    无缩略图 / no contact sheet: %s\r\n", c.ContactSheetNote)
		}
	}
	p("%s  监管链（审计日志）/ chain of custody (audit log)\r\n", CustodyName)
	p("%s  清单：所有文件的 SHA-256 / manifest: SHA-256 of every file\r\n", ManifestName)
	p("%s  清单的 Ed25519 签名 / Ed25519 signature of the manifest\r\n\r\n", SignatureName)
}

// readmeHowTo is how to play and how to verify any bundle, in Chinese
// and English.
const readmeHowTo = `如何播放
--------
video/ 目录中的 MP4 文件是摄像机录制的原始视频（H.264/H.265，未经重新编码），
可用任何常见播放器打开，例如 VLC（https://www.videolan.org）、Windows 媒体播放器
或 QuickTime。画面时间以 UTC（协调世界时）记录；北京时间 = UTC + 8 小时。
manifest.json 中每个摄像机的 "actual" 为视频第一帧至最后一帧结束的 UTC 时间，
"requested" 为申请的时间段，"clock_source" 说明时间来源（rtcp：摄像机自身时钟；
arrival：边缘设备收到视频的时间），"clock_offset_ms" 为边缘设备与中心的时钟差。

如何验证
--------
1. 使用 Vigil：  vigil evidence verify 证据包.zip --key evidence.pub
   验证签名、每个文件的哈希与大小、清单一致性及监管链；任何一个字节被修改都会
   验证失败，并指出被修改的文件。
2. 手工验证（无需 Vigil）：
   a) 核对公钥指纹（见上）与法院收到的公钥一致；
   b) 用 OpenSSL 3 验证签名：
        openssl pkeyutl -verify -pubin -inkey evidence.pub -rawin \
          -in manifest.json -sigfile manifest.sig
      输出 "Signature Verified Successfully" 即清单未被修改；
   c) 用 sha256sum 计算每个文件的 SHA-256，与 manifest.json 中 "files" 所列一致：
        sha256sum video/*.mp4 contact/*.jpg custody.jsonl README.txt

How to play
-----------
The MP4 files in video/ are the original video recorded by the cameras
(H.264/H.265, not re-encoded). Any common player opens them, for example VLC
(https://www.videolan.org), Windows Media Player or QuickTime. Times are UTC;
Beijing time is UTC + 8 hours. In manifest.json, each camera's "actual" range
runs from the first frame to the end of the last, "requested" is the range
asked for, "clock_source" says where the times came from (rtcp: the camera's
own clock; arrival: the edge box's clock when the video arrived) and
"clock_offset_ms" is the edge box's clock offset to central.

How to verify
-------------
1. With Vigil:  vigil evidence verify bundle.zip --key evidence.pub
   checks the signature, every file's hash and size, the manifest's internal
   consistency and the chain of custody. Any changed byte makes it fail and
   name the file.
2. By hand (no Vigil needed):
   a) check that the key fingerprint above matches the public key the court
      received;
   b) check the signature with OpenSSL 3:
        openssl pkeyutl -verify -pubin -inkey evidence.pub -rawin \
          -in manifest.json -sigfile manifest.sig
      "Signature Verified Successfully" means the manifest is unchanged;
   c) compute each file's SHA-256 and compare with "files" in manifest.json:
        sha256sum video/*.mp4 contact/*.jpg custody.jsonl README.txt

custody.jsonl: one audit entry per line. Each entry's "hash" is the SHA-256
of its canonical form and its "prev" is the hash of the entry before, so an
entry changed, removed or moved breaks the chain (vigil evidence verify checks
it; the canonical form is described in Vigil's central/audit package).
`

// eventKinds counts gate events by kind, as " (gate.closed 1, gate.forced
// 1)" in kind order; "" when there are none or none names its kind.
func eventKinds(events []json.RawMessage) string {
	n := map[string]int{}
	for _, e := range events {
		var v struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(e, &v) == nil && v.Kind != "" {
			n[v.Kind]++
		}
	}
	if len(n) == 0 {
		return ""
	}
	var parts []string
	for k, c := range n {
		parts = append(parts, fmt.Sprintf("%s %d", k, c))
	}
	slices.Sort(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}
