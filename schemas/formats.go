package schemas

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/xeipuuv/gojsonschema"
)

//go:generate go run ./internal/isogen -out data

//go:embed data/iso3166-1.tsv
var iso3166 []byte

//go:embed data/iso4217.tsv
var iso4217 []byte

var (
	countries  = loadCodes(iso3166)
	currencies = loadCodes(iso4217)
)

// Places are the corridor's reference locations (docs/domain.md), named in
// messages so that a clerk recognises them.
var Places = map[string]string{
	"CNCKG": "Chongqing", "CNCTU": "Chengdu", "CNKMG": "Kunming", "CNNNG": "Nanning",
	"CNQZH": "Qinzhou", "CNBHY": "Beihai", "CNFAN": "Fangchenggang", "SGSIN": "Singapore",
	"MYPKG": "Port Klang", "VNHPH": "Haiphong", "THLCH": "Laem Chabang", "IDJKT": "Jakarta",
}

func loadCodes(data []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		code, name, _ := strings.Cut(line, "\t")
		m[code] = name
	}
	return m
}

// The domain formats. Each check returns nil or an error whose text is a
// sentence a clerk understands; the same function backs the gojsonschema
// format checker and the problem detail.
var formatChecks = map[string]func(string) error{
	"iso6346":   CheckContainerNumber,
	"unlocode":  CheckUNLocode,
	"hs-code":   CheckHSCode,
	"iso3166":   CheckCountry,
	"iso4217":   CheckCurrency,
	"date-time": CheckDateTime,
	"date":      CheckDate,
}

type formatChecker func(string) error

func (f formatChecker) IsFormat(input any) bool {
	s, ok := input.(string)
	if !ok {
		return true // type errors are the schema's "type" keyword's to report
	}
	return f(s) == nil
}

// Formats are registered once, at init: registering later races (pitfalls.md).
func init() {
	for name, fn := range formatChecks {
		gojsonschema.FormatCheckers.Add(name, formatChecker(fn))
	}
}

var containerRE = regexp.MustCompile(`^[A-Z]{3}[UJZ][0-9]{7}$`)

// CheckContainerNumber checks an ISO 6346 container number, check digit included.
func CheckContainerNumber(s string) error {
	if !containerRE.MatchString(s) {
		return errors.New("a container number is 4 capital letters (owner code and U, J or Z) and 7 digits, e.g. CSQU3054383")
	}
	want := containerCheckDigit(s[:10])
	if got := int(s[10] - '0'); got != want {
		return fmt.Errorf("check digit should be %d, not %d", want, got)
	}
	return nil
}

func containerCheckDigit(s string) int {
	sum, weight := 0, 1
	for _, r := range s {
		var v int
		if r >= '0' && r <= '9' {
			v = int(r - '0')
		} else {
			// A=10, skipping multiples of 11 (11, 22, 33).
			v = int(r-'A') + 10
			v += (v - 1) / 10
		}
		sum += v * weight
		weight *= 2
	}
	return sum % 11 % 10
}

var locodeRE = regexp.MustCompile(`^[A-Z]{2}[A-Z2-9]{3}$`)

// CheckUNLocode checks a UN/LOCODE: shape and a country part that exists.
func CheckUNLocode(s string) error {
	if !locodeRE.MatchString(s) {
		return fmt.Errorf("%q is not a UN/LOCODE: two letters for the country, then three of A-Z and 2-9, e.g. CNQZH", s)
	}
	if _, ok := countries[s[:2]]; !ok && s[:2] != "XZ" {
		return fmt.Errorf("%q is not a UN/LOCODE: %s is not an ISO 3166-1 country", s, s[:2])
	}
	return nil
}

var hsRE = regexp.MustCompile(`^([0-9]{6}|[0-9]{8}|[0-9]{10})$`)

// CheckHSCode checks a Harmonized System code: 6, 8 or 10 digits in an HS
// chapter that exists (01 to 97; 77 is reserved).
func CheckHSCode(s string) error {
	if !hsRE.MatchString(s) {
		return fmt.Errorf("%q is not an HS code: write 6, 8 or 10 digits without dots, e.g. 870899", s)
	}
	ch := int(s[0]-'0')*10 + int(s[1]-'0')
	if ch < 1 || ch > 97 || ch == 77 {
		return fmt.Errorf("%q is not an HS code: chapter %s does not exist", s, s[:2])
	}
	return nil
}

// CheckCountry checks an ISO 3166-1 alpha-2 country code.
func CheckCountry(s string) error {
	if _, ok := countries[s]; !ok {
		return fmt.Errorf("%q is not an ISO 3166-1 alpha-2 country code, e.g. CN or SG", s)
	}
	return nil
}

// CheckCurrency checks an ISO 4217 currency code.
func CheckCurrency(s string) error {
	if _, ok := currencies[s]; !ok {
		return fmt.Errorf("%q is not an ISO 4217 currency code, e.g. CNY, SGD or USD", s)
	}
	return nil
}

var dateTimeRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`)

// CheckDateTime checks an RFC 3339 date-time with a time zone; gojsonschema's
// own checker accepts a bare date.
func CheckDateTime(s string) error {
	if !dateTimeRE.MatchString(s) {
		return fmt.Errorf("%q is not a date-time: write it as 2026-11-20T08:30:00+08:00 (RFC 3339, with a time zone)", s)
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		return fmt.Errorf("%q is not a real date-time", s)
	}
	return nil
}

// CheckDate checks a calendar date (YYYY-MM-DD).
func CheckDate(s string) error {
	if _, err := time.Parse(time.DateOnly, s); err != nil || len(s) != 10 {
		return fmt.Errorf("%q is not a date: write it as 2026-11-18", s)
	}
	return nil
}

// CountryName and CurrencyName return the English name of a code, or "".
func CountryName(code string) string  { return countries[code] }
func CurrencyName(code string) string { return currencies[code] }
