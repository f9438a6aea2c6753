package manscdp

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Charset names the character set of a MANSCDP body.
type Charset string

// The charsets platforms use. GB2312 is the standard's default; GBK and
// GB18030 are its supersets and are decoded the same way.
const (
	UTF8   Charset = "UTF-8"
	GB2312 Charset = "GB2312"
)

// normCharset maps an XML encoding label to the charset we answer in.
func normCharset(label string) (Charset, bool) {
	switch strings.ToUpper(strings.TrimSpace(label)) {
	case "", "UTF-8", "UTF8", "US-ASCII", "ASCII":
		return UTF8, true
	case "GB2312", "GBK", "GB18030", "CP936", "EUC-CN":
		return GB2312, true
	}
	return "", false
}

// gbEncoding is the codec for GB2312 bodies. GB18030 decodes every GB2312
// and GBK byte sequence; answers are encoded as GBK, whose two-byte codes
// cover GB2312 and the extra characters of names like 堃 or 喆 that
// platforms in practice accept.
func gbDecoder() *encoding.Decoder { return simplifiedchinese.GB18030.NewDecoder() }

func gbEncoder() *encoding.Encoder {
	// A character with no GBK code (an emoji in a camera name) becomes a
	// substitute instead of failing the whole answer.
	return encoding.ReplaceUnsupported(simplifiedchinese.GBK.NewEncoder())
}

// charsetReader is the xml.Decoder hook: the declared label picks the
// decoder. A body declared GB2312 that is valid UTF-8 with non-ASCII text
// is read as UTF-8: several platforms declare GB2312 and send UTF-8, and
// GB2312 text is almost never valid UTF-8.
func charsetReader(body []byte) func(label string, in io.Reader) (io.Reader, error) {
	return func(label string, in io.Reader) (io.Reader, error) {
		cs, ok := normCharset(label)
		if !ok {
			return nil, fmt.Errorf("unsupported charset %q (want GB2312 or UTF-8)", label)
		}
		if cs == GB2312 && !(utf8.Valid(body) && hasNonASCII(body)) {
			return gbDecoder().Reader(in), nil
		}
		return in, nil
	}
}

func hasNonASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// declaredCharset reads the encoding label from the XML declaration, if any.
func declaredCharset(body []byte) string {
	b := bytes.TrimLeft(body, " \t\r\n\ufeff")
	if !bytes.HasPrefix(b, []byte("<?xml")) {
		return ""
	}
	end := bytes.Index(b, []byte("?>"))
	if end < 0 {
		return ""
	}
	decl := string(b[:end])
	i := strings.Index(decl, "encoding")
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(decl[i+len("encoding"):], " \t")
	if !strings.HasPrefix(rest, "=") {
		return ""
	}
	rest = strings.TrimLeft(rest[1:], " \t")
	if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
		return ""
	}
	q := rest[0]
	j := strings.IndexByte(rest[1:], q)
	if j < 0 {
		return ""
	}
	return rest[1 : 1+j]
}

// encodeBody writes the XML declaration for cs and the UTF-8 document
// doc transcoded to cs.
func encodeBody(doc []byte, cs Charset) ([]byte, error) {
	var out bytes.Buffer
	switch cs {
	case GB2312:
		out.WriteString(`<?xml version="1.0" encoding="GB2312"?>` + "\n")
		enc, err := gbEncoder().Bytes(doc)
		if err != nil {
			return nil, fmt.Errorf("encode GB2312: %w", err)
		}
		out.Write(enc)
	case UTF8, "":
		out.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
		out.Write(doc)
	default:
		return nil, fmt.Errorf("unsupported charset %q (want GB2312 or UTF-8)", cs)
	}
	out.WriteString("\n")
	return out.Bytes(), nil
}
