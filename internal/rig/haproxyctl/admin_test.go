package haproxyctl

import "testing"

func TestParseShowStat(t *testing.T) {
	const out = "# pxname,svname,qcur,scur,status,\n" +
		"fe,FRONTEND,,12,OPEN,\n" +
		"be,b1,0,3,UP,\n" +
		"be,b2,0,0,MAINT,\n" +
		"be,BACKEND,0,3,UP,\n\n"
	s, err := parseShowStat(out, "be", "b2")
	if err != nil || s["scur"] != "0" || s["status"] != "MAINT" {
		t.Errorf("be/b2 = %v, %v; want scur 0, status MAINT", s, err)
	}
	if _, err := parseShowStat(out, "be", "b9"); err == nil {
		t.Error("a missing server gave no error")
	}
	if _, err := parseShowStat("Unknown command\n", "be", "b1"); err == nil {
		t.Error("an answer that is not show stat gave no error")
	}
}
