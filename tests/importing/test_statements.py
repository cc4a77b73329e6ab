"""Bank statements as banks really send them (issue 19): OFX without its header or with its
end tags misplaced, investment statements' bank transactions, placeholder references in
CAMT.052, multi-statement MT940 in withdrawn currencies, and amounts written in cents.

Each file here is small and written by hand in the layout of a real export (named in its
comment); no export is copied. They are read through `open_import`, as an upload is, and the
records checked through the transaction handler, as a worker does."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from jobs.datatypes.base import BatchContext, RecordRejected
from jobs.datatypes.transaction import TransactionHandler
from jobs.errors import InputError
from jobs.importing import open_import
from jobs.importing.mapping import Mapping
from jobs.importing.statements import real_reference, statement_ids


def read(content: bytes, name: str, mapping: dict | None = None, base_currency: str = "") -> tuple[list, list]:
    """(validated rows as dicts, failures as (code, message)), as bench/corpus_score.py reads."""
    options = {"base_currency": base_currency} if base_currency else {}
    imported = open_import(io.BytesIO(content), name=name, mapping=mapping, options=options,
                           expects_transactions=True)
    handler = TransactionHandler()
    ctx = BatchContext(job_id=None, project_id="", batch_id=0, batch_number=0, data_type="transaction",
                       options=options, attempt=1)
    rows, failures = [], []
    for record in imported.dicts():
        try:
            values = handler.validate(record, ctx)
        except RecordRejected as rejected:
            failures.append((rejected.code, rejected.message))
            continue
        rows.append(dict(zip(("id", "date", "amount", "currency", "account", "counterparty", "description",
                              "reference"), values, strict=True)))
    return rows, failures


# 2. OFX ------------------------------------------------------------------------------------

# American Express's download: no OFX header, and every value's end tag written after the
# values that follow it, as if each value enclosed the rest of its aggregate.
AMEX_LIKE = """<OFX>
 <SIGNONMSGSRSV1>
  <SONRS>
   <STATUS>
    <CODE>0
     <SEVERITY>INFO
     </SEVERITY>
    </CODE>
   </STATUS>
   <DTSERVER>20260112083600.212[-7:MST]
    <LANGUAGE>ENG
    </LANGUAGE>
   </DTSERVER>
  </SONRS>
 </SIGNONMSGSRSV1>
 <CREDITCARDMSGSRSV1>
  <CCSTMTTRNRS>
   <TRNUID>0
    <STATUS>
     <CODE>0
      <SEVERITY>INFO
      </SEVERITY>
     </CODE>
    </STATUS>
    <CCSTMTRS>
     <CURDEF>USD
      <CCACCTFROM>
       <ACCTID>371234567890005
        <DOWNLOAD.FLAG>FALSE
        </DOWNLOAD.FLAG>
       </ACCTID>
      </CCACCTFROM>
      <BANKTRANLIST>
       <DTSTART>20260112050000.000[-7:MST]
        <DTEND>20260112050000.000[-7:MST]
         <STMTTRN>
          <TRNTYPE>DEBIT
           <DTPOSTED>20251124000000.000[-7:MST]
            <TRNAMT>-61.20
             <FITID>320253280255100001
              <REFNUM>320253280255100001
               <NAME>BLUE HERON CAFE     PORTLAND
                <MEMO>7101466     RESTAURANT
                </MEMO>
               </NAME>
              </REFNUM>
             </FITID>
            </TRNAMT>
           </DTPOSTED>
          </TRNTYPE>
         </STMTTRN>
         <STMTTRN>
          <TRNTYPE>CREDIT
           <DTPOSTED>20251126000000.000[-7:MST]
            <TRNAMT>250.00
             <FITID>320253300285000002
              <NAME>PAYMENT RECEIVED - THANK YOU
              </NAME>
             </FITID>
            </TRNAMT>
           </DTPOSTED>
          </TRNTYPE>
         </STMTTRN>
        </DTEND>
       </DTSTART>
      </BANKTRANLIST>
      <LEDGERBAL>
       <BALAMT>-1200.00
        <DTASOF>20260112050000.000[-7:MST]
        </DTASOF>
       </BALAMT>
      </LEDGERBAL>
     </CURDEF>
    </CCSTMTRS>
   </TRNUID>
  </CCSTMTTRNRS>
 </CREDITCARDMSGSRSV1>
</OFX>
"""

OFX_HEADER = ("OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
              "COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n")

# A brokerage's cash account (the layout of a bank's OFX 1.02 investment download): the bank
# transactions sit in INVBANKTRAN inside INVSTMTRS, beside a trade.
INVESTMENT = OFX_HEADER + """<OFX>
<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>
<DTSERVER>20260617185358.913[-4:EDT]<LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1>
<INVSTMTMSGSRSV1>
  <INVSTMTTRNRS>
    <TRNUID>a8ac02b9
    <STATUS><CODE>0<SEVERITY>INFO</STATUS>
    <INVSTMTRS>
      <DTASOF>20260616033008.000[-4:EDT]
      <CURDEF>USD
      <INVACCTFROM>
        <BROKERID>examplebank.com
        <ACCTID>555000111
      </INVACCTFROM>
      <INVTRANLIST>
        <DTSTART>20260608000000.000[-4:EDT]
        <DTEND>20260617185358.976[-4:EDT]
        <INVBANKTRAN>
          <STMTTRN>
            <TRNTYPE>DEBIT
            <DTPOSTED>20260608000000.000[-4:EDT]
            <TRNAMT>-33.7200
            <FITID>46f2144d0ce515a8
            <NAME>DIRECT DEBIT ELECTRIC CO
            <MEMO>DIRECT DEBIT ELECTRIC CO AUTOPAY
            <CURRENCY>
              <CURRATE>1.00
              <CURSYM>USD
            </CURRENCY>
          </STMTTRN>
          <SUBACCTFUND>CASH
        </INVBANKTRAN>
        <INVBANKTRAN>
          <STMTTRN>
            <TRNTYPE>DEP
            <DTPOSTED>20260611000000.000[-4:EDT]
            <TRNAMT>+75.6000
            <FITID>9a69c0efa290c0aa
            <NAME>CHECK RECEIVED
            <MEMO>CHECK RECEIVED
          </STMTTRN>
          <SUBACCTFUND>CASH
        </INVBANKTRAN>
        <BUYSTOCK>
          <INVBUY>
            <INVTRAN>
              <FITID>trade-0001
              <DTTRADE>20260612000000.000[-4:EDT]
              <MEMO>BUY 10 EXMP
            </INVTRAN>
            <SECID><UNIQUEID>123456789<UNIQUEIDTYPE>CUSIP</SECID>
            <UNITS>10
            <UNITPRICE>12.5
            <TOTAL>-125.00
            <SUBACCTSEC>CASH
            <SUBACCTFUND>CASH
          </INVBUY>
          <BUYTYPE>BUY
        </BUYSTOCK>
      </INVTRANLIST>
    </INVSTMTRS>
  </INVSTMTTRNRS>
</INVSTMTMSGSRSV1>
</OFX>
"""


def test_ofx_without_its_header_and_with_misplaced_end_tags_is_read():
    rows, failures = read(AMEX_LIKE.encode(), "activity.ofx", base_currency="USD")
    assert failures == []
    assert [(r["id"], r["date"].isoformat(), r["amount"], r["currency"], r["counterparty"]) for r in rows] == [
        ("371234567890005/320253280255100001", "2025-11-24", Decimal("-61.20"), "USD", "BLUE HERON CAFE PORTLAND"),
        ("371234567890005/320253300285000002", "2025-11-26", Decimal("250.00"), "USD",
         "PAYMENT RECEIVED - THANK YOU")]
    assert rows[0]["description"] == "7101466 RESTAURANT"
    # The same file under any name, and with a header, reads the same.
    assert read(AMEX_LIKE.encode(), "download.qfx")[0] == rows
    assert read((OFX_HEADER + AMEX_LIKE).encode(), "activity.ofx")[0] == rows


def test_a_well_formed_ofx_is_still_read_by_ofxtools_and_garbage_is_still_refused():
    well_formed = OFX_HEADER + AMEX_LIKE.replace("</MEMO>", "").replace("</NAME>", "")
    assert len(read(well_formed.encode(), "a.ofx")[0]) == 2
    with pytest.raises(InputError, match="no statement transactions"):
        read(b"<OFX><SIGNONMSGSRSV1><SONRS><CODE>0</SONRS></SIGNONMSGSRSV1></OFX>", "empty.ofx")
    with pytest.raises(InputError, match="could not be parsed"):
        read(b"OFXHEADER:999\nnonsense\n\nno markup at all", "broken.ofx")


def test_a_fitid_that_different_transactions_share_names_none_of_them():
    # Some banks write one FITID ("0") for every transaction of a download.
    shared = AMEX_LIKE.replace("<FITID>320253280255100001", "<FITID>0").replace("<FITID>320253300285000002",
                                                                                "<FITID>0")
    rows, failures = read(shared.encode(), "activity.ofx")
    assert failures == [] and len(rows) == 2
    assert all(r["id"].startswith("auto-") for r in rows) and rows[0]["id"] != rows[1]["id"]
    assert [r["id"] for r in read(shared.encode(), "activity.ofx")[0]] == [r["id"] for r in rows]


def test_an_ofx_header_ofxtools_refuses_does_not_hide_the_statement():
    # Spaces after the colons, as some banks' exporters write the header.
    loose_header = OFX_HEADER.replace(":", ": ").replace("\n", "\r\n")
    rows, failures = read((loose_header + AMEX_LIKE).encode("cp1252"), "export.qfx")
    assert failures == [] and [r["id"] for r in rows] == [
        "371234567890005/320253280255100001", "371234567890005/320253300285000002"]


def test_an_investment_statements_bank_transactions_are_read_and_its_trades_fail_alone():
    rows, failures = read(INVESTMENT.encode(), "brokerage.ofx")
    assert [(r["id"], r["date"].isoformat(), r["amount"], r["currency"], r["account"]) for r in rows] == [
        ("555000111/46f2144d0ce515a8", "2026-06-08", Decimal("-33.7200"), "USD", "555000111"),
        ("555000111/9a69c0efa290c0aa", "2026-06-11", Decimal("75.6000"), "USD", "555000111")]
    assert [code for code, _ in failures] == ["unsupported_transaction"]
    assert "BUYSTOCK" in failures[0][1] and "INVBANKTRAN" in failures[0][1]


# 3. CAMT.052 placeholder references --------------------------------------------------------

def _camt052_entry(amount: str, ref: str, name: str, text: str, indicator: str = "DBIT", end_to_end: str = "") -> str:
    end_to_end = f"<EndToEndId>{end_to_end}</EndToEndId>" if end_to_end else ""
    return f"""
      <Ntry>
        <Amt Ccy="EUR">{amount}</Amt>
        <CdtDbtInd>{indicator}</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>2026-02-05</Dt></BookgDt>
        <ValDt><Dt>2026-02-05</Dt></ValDt>
        <AcctSvcrRef>{ref}</AcctSvcrRef>
        <BkTxCd />
        <NtryDtls><TxDtls>
          <Refs>{end_to_end}<Prtry><Tp>FI-UMSATZ-ID</Tp><Ref>2026-02-05-08.59.18</Ref></Prtry></Refs>
          <RltdPties><Cdtr><Nm>{name}</Nm></Cdtr><Dbtr><Nm>{name}</Nm></Dbtr></RltdPties>
          <RmtInf><Ustrd>{text}</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
        <AddtlNtryInf>BELASTUNG</AddtlNtryInf>
      </Ntry>"""


# A German savings bank's intraday report (camt.052.001.02): the bank writes NONREF where the
# entry has no reference of its own, so most entries share it.
CAMT052 = f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.02">
  <BkToCstmrAcctRpt>
    <GrpHdr><MsgId>camt52_20260205</MsgId><CreDtTm>2026-02-05T14:09:01</CreDtTm></GrpHdr>
    <Rpt>
      <Id>camt052_0001</Id>
      <Acct><Id><IBAN>DE02100500000024290661</IBAN></Id><Ccy>EUR</Ccy></Acct>
      {_camt052_entry("268.35", "2026020512345", "Stadtwerke Musterstadt", "Abschlag Februar")}
      {_camt052_entry("30.00", "NONREF", "Kiosk am Markt", "Kartenzahlung")}
      {_camt052_entry("2.50", "NONREF", "Sparkasse Musterstadt", "Entgelt")}
      {_camt052_entry("2.50", "NONREF", "Sparkasse Musterstadt", "Entgelt")}
      {_camt052_entry("26.00", "NONREF", "Erika Mustermann", "Miete Anteil", "CRDT", "NOTPROVIDED")}
    </Rpt>
  </BkToCstmrAcctRpt>
</Document>
"""


def test_placeholder_references_are_no_reference_and_no_entry_is_merged():
    rows, failures = read(CAMT052.encode(), "umsaetze.xml")
    assert failures == [] and len(rows) == 5
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == 5, ids  # the two identical fees stay two
    assert ids[0] == "DE02100500000024290661/2026020512345"
    assert all(i.startswith("auto-") for i in ids[1:])
    assert [r["reference"] for r in rows] == ["2026020512345", "", "", "", ""]
    assert [r["amount"] for r in rows] == [Decimal(a) for a in ("-268.35", "-30.00", "-2.50", "-2.50", "26.00")]
    assert [r["id"] for r in read(CAMT052.encode(), "again.xml")[0]] == ids  # a re-upload replaces


def test_statement_ids_keep_references_that_name_one_transaction():
    assert real_reference(" nonref ") == real_reference("NOTPROVIDED") == real_reference(None) == ""
    assert real_reference(" 2026-0042 ") == "2026-0042"
    ids = statement_ids("ACC", [("R1", ["a"]), ("R1", ["a"]), ("R2", ["b"]), ("R2", ["c"]), ("", ["d"])])
    # R1 twice with the same content is one transaction reported twice: one id, a duplicate
    # the store counts and shows; R2 with other content is two transactions: two derived ids.
    assert ids[0] == ids[1] == "ACC/R1"
    assert ids[2].startswith("auto-") and ids[3].startswith("auto-") and ids[2] != ids[3]
    assert ids[4].startswith("auto-") and len(set(ids[2:])) == 3
    assert statement_ids("ACC", [("R2", ["b"]), ("R2", ["c"])]) == ids[2:4]


# 1 and 4. Withdrawn currencies, multi-statement MT940 ----------------------------------------

# A German bank's MT940 from before the euro, two statements in one file (DEM, then EUR),
# separated by a "-" line as SWIFT's envelope leaves it.
MT940_MULTI = """:20:981110
:25:45050050/76198810
:28:27/01
:60F:C981016DEM84349,74
:61:981017D6800,NCHK16703074
:86:999PN5477SCHECK-NR. 0000016703074
:61:981017C18500,NCLRN
:86:999PN2406SCHECK
:62F:C981017DEM96049,74
-
:20:1234567
:21:9876543210
:25:10020030/1234567
:28C:5/1
:60F:C021101EUR2187,95
:61:0211011102DR800,NSTONONREF//55555
:86:008?00DAUERAUFTRAG?100599?20Miete November?3010020030?31234567?32MUELLER
:62F:C021130EUR1387,95
-
:20:STARTUMS
:25:1222333444
:28:1/1
:NS:22Beispiel GmbH
23Testkonto
:60F:C020315DEM0,00
:61:0203170320CM5000,00S05168790452
:NS:01Rechnung 4711
02vom 01.03.2002
15Muster AG
17Gutschrift
:62F:C020317DEM5000,00
"""


def test_multi_statement_mt940_in_a_withdrawn_currency_keeps_each_statements_account_and_currency():
    rows, failures = read(MT940_MULTI.encode("cp1252"), "konto.sta")
    assert failures == []
    assert [(r["date"].isoformat(), r["amount"], r["currency"], r["account"]) for r in rows] == [
        ("1998-10-17", Decimal("-6800"), "DEM", "45050050/76198810"),
        ("1998-10-17", Decimal("18500"), "DEM", "45050050/76198810"),
        ("2002-11-01", Decimal("-800"), "EUR", "10020030/1234567"),
        ("2002-03-17", Decimal("5000.00"), "DEM", "1222333444")]
    assert rows[2]["counterparty"] == "MUELLER" and rows[2]["reference"] == "55555"  # not NONREF
    # A structured :86: (?20 purpose, ?32 name), split by the library into fields, keeps its text.
    assert rows[2]["description"] == "Miete November"
    # A :NS: block in place of the :86: (01-14 purpose, 15 the other party).
    assert (rows[3]["counterparty"], rows[3]["description"]) == ("Muster AG", "Rechnung 4711 vom 01.03.2002")
    assert len({r["id"] for r in rows}) == 4


# 5. Amounts in minor units ------------------------------------------------------------------

# A Lithuanian bank's LITAS-ESIS .acc export: tab-separated, no header, the record type in the
# first column, amounts in cents with a D/C column, in litas (LTL, withdrawn in 2015).
LITAS_ESIS = "\r\n".join("\t".join(cells) for cells in [
    ["010", "8511", "20120127", "", "100", "100", "D", "", "", "08511", "1987000001", "", "",
     "Mokestis už sąskaitos aptarnavimą", "AGBLLT2XXXX", "AB banko skyrius", "6960321", "AB BANKAS"],
    ["010", "2300", "20120217", "", "30000", "30000", "C", "", "", "66", "2003000002", "", "",
     "Sveikinimai", "HABALT22XXX", "AB bankas", "LT222222222222222222", "JONAS JONAITIS"],
    ["010", "1636", "20120131", "", "16141", "16141", "D", "", "", "31211648", "1991000003", "", "",
     "Paskolos grąžinimas", "AGBLLT2XXXX", "AB banko skyrius", "602170641", "PETRAS PETRAITIS"],
]) + "\r\n"
LITAS_MAPPING = {"has_header": False, "delimiter": "\t", "encoding": "cp1257", "date_format": "%Y%m%d",
                 "columns": {"date": 3, "amount": 5, "direction": 7, "reference": 11, "description": 14,
                             "counterparty": 18}, "minor_units": 2}


def test_amounts_written_in_cents_are_read_at_the_scale_the_mapping_states():
    content = LITAS_ESIS.encode("cp1257")
    rows, failures = read(content, "israsas.acc", LITAS_MAPPING, base_currency="LTL")
    assert failures == []
    assert [(r["amount"], r["currency"], r["counterparty"]) for r in rows] == [
        (Decimal("-1.00"), "LTL", "AB BANKAS"), (Decimal("300.00"), "LTL", "JONAS JONAITIS"),
        (Decimal("-161.41"), "LTL", "PETRAS PETRAITIS")]
    unscaled = {key: value for key, value in LITAS_MAPPING.items() if key != "minor_units"}
    # The ids do not depend on the mapping's reading, so a corrected mapping replaces rows.
    assert [r["id"] for r in read(content, "israsas.acc", unscaled, base_currency="LTL")[0]] == [
        r["id"] for r in rows]
    # A value with decimals is not a count of cents: it fails, never read at another scale.
    decimals = content.replace(b"\t16141\t", b"\t161.41\t")
    rows, failures = read(decimals, "israsas.acc", LITAS_MAPPING, base_currency="LTL")
    assert len(rows) == 2 and failures[0][0] == "invalid_amount" and "minor units" in failures[0][1]


@pytest.mark.parametrize("value", [-1, 5, 2.0, "2", True])
def test_minor_units_must_be_a_whole_number_from_0_to_4(value):
    with pytest.raises(InputError, match="minor_units"):
        Mapping.parse({"amount": "Betrag", "minor_units": value})
    assert Mapping.parse({"amount": "Betrag", "minor_units": 3}).as_dict()["minor_units"] == 3


def test_rows_of_other_record_types_are_left_out_and_counted_when_the_mapping_names_the_type():
    # The real export around its movements (type 010): the file header (000), the opening and
    # closing balances (020) and a trailer of two fields (999) with the file's control total.
    header = "\t".join(["000", "20120304", "", "AGBLLT2XXXX", "AB banko skyrius", "40100", "Vilnius", "", "", "",
                        "Bill Gates", "00000000000", "Vilnius", "", "", "AB banko skyrius", "LT000000000000000000",
                        "LTL"])
    opening = "\t".join(["020", "LikutisPR", "20120101", "", "25175", "25175"] + [""] * 12)
    closing = "\t".join(["020", "LikutisPB", "20120304", "", "7483", "7483"] + [""] * 12)
    whole = "\r\n".join([header, opening, LITAS_ESIS.rstrip("\r\n"), closing, "999\t510350"]) + "\r\n"
    mapping = {**LITAS_MAPPING, "record_type": {"column": 1, "values": ["010"]}}
    imported = open_import(io.BytesIO(whole.encode("cp1257")), name="israsas.acc", mapping=mapping,
                           options={"base_currency": "LTL"}, expects_transactions=True)
    records = list(imported.dicts())
    assert [r["amount"] for r in records] == ["-1.00", "300.00", "-161.41"]
    assert imported.detected["skipped_rows"]["count"] == 4
    assert imported.detected["skipped_rows"]["reasons"] == {"record type '000'": 1, "record type '020'": 2,
                                                            "record type '999'": 1}
    # Without it the trailer is a row of the wrong width that fails alone, never dropped.
    rows, failures = read(whole.encode("cp1257"), "israsas.acc", LITAS_MAPPING, base_currency="LTL")
    assert [code for code, _ in failures].count("malformed_row") == 1


@pytest.mark.parametrize("value", [{"column": 0, "values": ["010"]}, {"column": 1, "values": []},
                                   {"column": "Typ", "values": ["010"]}, ["010"], {"column": 1}])
def test_a_record_type_needs_a_column_number_and_the_types_that_are_records(value):
    with pytest.raises(InputError, match="mapping.record_type must be"):
        Mapping.parse({"amount": 5, "record_type": value})
