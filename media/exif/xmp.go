package exif

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// maxXMPTokens bounds the XML tokens read from one XMP packet.
const maxXMPTokens = 100000

// rdfNS is the RDF namespace; its elements (Description, Alt, Seq, Bag, li)
// are structure, not properties.
const rdfNS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

// multiValued XMP properties are accumulated ("; "-joined) rather than
// first-wins, because each history entry may name a different tool.
var multiValued = map[string]bool{"softwareAgent": true}

// parseXMP reads an XMP packet. Properties are stored in md.Raw under
// "XMP:"+local name, whether written as attributes of rdf:Description or as
// elements (including rdf:Alt/Seq/Bag items). Namespaces prefixes are not
// checked: the local names we read are unambiguous in practice.
func parseXMP(packet []byte, md *Metadata) {
	if len(packet) > maxInflate {
		packet = packet[:maxInflate]
	}
	md.HasXMP = true
	d := xml.NewDecoder(bytes.NewReader(packet))
	d.Strict = false
	var stack []string // local names of open property elements ("" for rdf structure)
	var text strings.Builder
	for n := 0; n < maxXMPTokens && !md.stopped(); n++ {
		tok, err := d.RawToken()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				md.set("XMPError", err.Error())
			}
			return
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if t.Name.Space == "rdf" || t.Name.Space == "x" || t.Name.Space == rdfNS {
				name = ""
			}
			stack = append(stack, name)
			for _, a := range t.Attr {
				if a.Name.Space == "rdf" && a.Name.Local == "resource" && name != "" {
					// <ns:Prop rdf:resource="URI"/> is the value of Prop.
					xmpSet(md, name, a.Value)
					continue
				}
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" || a.Name.Space == "rdf" || a.Name.Space == "xml" {
					continue
				}
				xmpSet(md, a.Name.Local, a.Value)
			}
			text.Reset()
		case xml.CharData:
			if text.Len() < maxRawValue {
				text.Write(t)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				continue
			}
			// Text belongs to the nearest enclosing property element.
			if v := strings.TrimSpace(text.String()); v != "" {
				for i := len(stack) - 1; i >= 0; i-- {
					if stack[i] != "" {
						xmpSet(md, stack[i], v)
						break
					}
				}
			}
			text.Reset()
			stack = stack[:len(stack)-1]
		}
	}
	md.set("XMPError", "too many XML tokens")
}

// xmpSet stores one XMP property value.
func xmpSet(md *Metadata, local, value string) {
	key := "XMP:" + local
	value = strings.TrimSpace(value)
	if multiValued[local] {
		if old, ok := md.Raw[key]; ok && value != "" && !strings.Contains(old, value) && len(old) < maxRawValue {
			md.Raw[key] = old + "; " + value
			return
		}
	}
	md.set(key, value)
}
