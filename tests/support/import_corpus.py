"""A corpus of bank and ledger exports shaped like the ones forensic teams receive, each with
the exact transactions Zenith must read from it. Built here, not stored, so every byte is
visible in review."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import json


@dataclasses.dataclass
class Export:
    name: str  # file name as uploaded
    content: bytes
    expected: list[dict]  # transactions as stored: id (or None when derived), date, amount, currency, ...
    mapping: dict | None = None
    description: str = ""


def tx(id_, date, amount, currency, counterparty="", description="", reference="", account="") -> dict:
    return {"external_id": id_, "date": date, "amount": amount, "currency": currency, "counterparty": counterparty,
            "description": description, "reference": reference, "account": account}


def german_sparkasse() -> Export:
    text = ("\"Umsätze Girokonto\";\"Zeitraum: 01.02.2026 - 28.02.2026\"\n"
            "\"Kontonummer\";\"DE44 5001 0517 5407 3249 31\"\n\n"
            "\"Buchungstag\";\"Valutadatum\";\"Auftraggeber / Empfänger\";\"Verwendungszweck\";\"Betrag\";\"Währung\"\n"
            "\"03.02.26\";\"03.02.26\";\"Müller Bürobedarf GmbH\";\"Rechnung 4411\";\"-1.036,47\";\"EUR\"\n"
            "\"05.02.26\";\"06.02.26\";\"Kunde AG\";\"Zahlung Auftrag 77\";\"2.500,00\";\"EUR\"\n"
            "\"14.02.26\";\"14.02.26\";\"Stadtwerke\";\"Strom Februar\";\"-24,14\";\"EUR\"\n"
            "\"Kontostand am 28.02.2026\";\"1.439,39\"\n")
    return Export("Umsaetze_Girokonto.csv", text.encode("cp1252"), [
        tx(None, "2026-02-03", "-1036.47", "EUR", "Müller Bürobedarf GmbH", "Rechnung 4411", "", SPK),
        tx(None, "2026-02-05", "2500.00", "EUR", "Kunde AG", "Zahlung Auftrag 77", "", SPK),
        tx(None, "2026-02-14", "-24.14", "EUR", "Stadtwerke", "Strom Februar", "", SPK),
    ], description="semicolons, decimal comma, DD.MM.YY, preamble (the account: 'Kontonummer'), Windows-1252, "
                   "summary line")


SPK = "DE44 5001 0517 5407 3249 31"


def us_brokerage() -> Export:
    text = ("Date,Action,Description,Withdrawal,Deposit,Balance\n"
            "02/13/2026,ACH,ACME SUPPLIES,\"$1,036.47\",,\"$9,000.00\"\n"
            "02/14/2026,DIRECT DEP,PAYROLL ACME CORP,,\"$2,500.00\",\"$11,500.00\"\n"
            "03/02/2026,CHECK,CHECK 1044,$75.00,,\"$11,425.00\"\n")
    return Export("brokerage_activity.csv", text.encode(), [
        tx(None, "2026-02-13", "-1036.47", "USD", "", "ACME SUPPLIES"),
        tx(None, "2026-02-14", "2500.00", "USD", "", "PAYROLL ACME CORP"),
        tx(None, "2026-03-02", "-75.00", "USD", "", "CHECK 1044"),
    ], description="split withdrawal/deposit, dollar signs, MM/DD/YYYY from the column, no ids")


def uk_bank() -> Export:
    text = ("Date,Type,Description,Paid out,Paid in,Balance\n"
            "25/01/2026,DD,BRITISH GAS,£84.20,,\"£1,215.80\"\n"
            "02/02/2026,BGC,SALARY,,\"£3,100.00\",\"£4,315.80\"\n")
    return Export("statement.csv", text.encode(), [
        tx(None, "2026-01-25", "-84.20", "GBP", "", "BRITISH GAS"),
        tx(None, "2026-02-02", "3100.00", "GBP", "", "SALARY"),
    ], description="DD/MM/YYYY decided by 25/01, pound signs give the currency")


def french_bank() -> Export:
    text = ("Date opération;Libellé;Débit;Crédit\n"
            "01/03/2026;PRLV SEPA EDF;1 234,56;\n"
            "15/03/2026;VIR SEPA CLIENT DURAND;;980,00\n")
    return Export("releve.csv", b"\xef\xbb\xbf" + text.encode(), [
        tx(None, "2026-03-01", "-1234.56", "EUR", "", "PRLV SEPA EDF"),
        tx(None, "2026-03-15", "980.00", "EUR", "", "VIR SEPA CLIENT DURAND"),
    ], mapping={"default_currency": "EUR"}, description="UTF-8 BOM, space thousands, split débit/crédit")


def spanish_bank() -> Export:
    text = ("Fecha;Concepto;Importe;Divisa;Referencia\n"
            "20/02/2026;Compra Mercadona;-24,14;EUR;R-001\n"
            "21/02/2026;Transferencia recibida;150,00;EUR;R-002\n")
    return Export("movimientos.csv", text.encode(), [
        tx(None, "2026-02-20", "-24.14", "EUR", "", "Compra Mercadona", "R-001"),
        tx(None, "2026-02-21", "150.00", "EUR", "", "Transferencia recibida", "R-002"),
    ], description="Spanish headers, decimal comma")


def headerless() -> Export:
    text = "2026-04-01,LEDGER-1,-250.00,Office rent\n2026-04-02,LEDGER-2,1200.50,Consulting fee\n"
    return Export("ledger.csv", text.encode(), [
        tx("LEDGER-1", "2026-04-01", "-250.00", "EUR", "", "Office rent"),
        tx("LEDGER-2", "2026-04-02", "1200.50", "EUR", "", "Consulting fee"),
    ], mapping={"has_header": False, "columns": {"date": 1, "id": 2, "amount": 3, "description": 4},
                "default_currency": "EUR"}, description="no header: columns by number")


def utf16_tsv() -> Export:
    text = ("Date\tPayee\tAmount\tCurrency\n2026-05-03\tCafé Müller\t-12.50\tEUR\n"
            "2026-05-04\tSociété Générale\t99.99\tEUR\n")
    return Export("export.txt", text.encode("utf-16"), [
        tx(None, "2026-05-03", "-12.50", "EUR", "Café Müller"),
        tx(None, "2026-05-04", "99.99", "EUR", "Société Générale"),
    ], description="UTF-16 with BOM, tabs (Excel's Unicode text)")


def pipes_cp1252() -> Export:
    text = ("Bank statement export\nGenerated 2026-06-30\n"
            "Posting Date|Reference|Beneficiary|Details|Amount|Ccy\n"
            "2026-06-01|INV-9|Señor Núñez|Honorarios|-300.00|EUR\n"
            "2026-06-02|INV-10|Ætna Ltd|Refund|45.00|EUR\n")
    return Export("export_pipes.csv", text.encode("cp1252"), [
        tx(None, "2026-06-01", "-300.00", "EUR", "Señor Núñez", "Honorarios", "INV-9"),
        tx(None, "2026-06-02", "45.00", "EUR", "Ætna Ltd", "Refund", "INV-10"),
    ], description="pipes, preamble, Windows-1252 accents")


def signs() -> Export:
    text = ("Transaction ID,Date,Counterparty,Amount,Currency\n"
            "S-1,2026-07-01,Vendor A,(123.45),CHF\n"
            "S-2,2026-07-02,Vendor B,24.10-,CHF\n"
            "S-3,2026-07-03,Vendor C,\"1,000.00\",CHF\n")
    return Export("signs.csv", text.encode(), [
        tx("S-1", "2026-07-01", "-123.45", "CHF", "Vendor A"),
        tx("S-2", "2026-07-02", "-24.10", "CHF", "Vendor B"),
        tx("S-3", "2026-07-03", "1000.00", "CHF", "Vendor C"),
    ], description="parentheses and trailing-minus negatives, thousands commas")


def workbook() -> Export:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Transactions"
    sheet.append(["Quarterly ledger extract"])
    sheet.append([])
    sheet.append(["Entry ID", "Booking Date", "Vendor", "Memo", "Net Amount", "Currency"])
    sheet.append(["E-100", dt.datetime(2026, 8, 3), "Globex GmbH", "Services Q3", -4500.25, "EUR"])
    sheet.append(["E-101", dt.datetime(2026, 8, 4), "Initech LLC", "Licence", 1999, "USD"])
    buffer = io.BytesIO()
    book.save(buffer)
    return Export("ledger_q3.xlsx", buffer.getvalue(), [
        tx("E-100", "2026-08-03", "-4500.25", "EUR", "Globex GmbH", "Services Q3"),
        tx("E-101", "2026-08-04", "1999.00", "USD", "Initech LLC", "Licence"),
    ], description="Excel workbook with a title row, real dates and numbers")


OFX_V1 = """OFXHEADER:100
DATA:OFXSGML
VERSION:102
SECURITY:NONE
ENCODING:USASCII
CHARSET:1252
COMPRESSION:NONE
OLDFILEUID:NONE
NEWFILEUID:NONE

<OFX>
<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><DTSERVER>20260301120000<LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1>
<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>
<STMTRS><CURDEF>USD<BANKACCTFROM><BANKID>121000248<ACCTID>9876543<ACCTTYPE>CHECKING</BANKACCTFROM>
<BANKTRANLIST><DTSTART>20260201<DTEND>20260228
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20260203120000[-5:EST]<TRNAMT>-1036.47<FITID>20260203-1<NAME>ACME SUPPLIES<MEMO>Invoice 4411</STMTTRN>
<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20260205<TRNAMT>2500.00<FITID>20260205-7<NAME>CLIENT PAYMENT<CHECKNUM>1044</STMTTRN>
</BANKTRANLIST><LEDGERBAL><BALAMT>1000.00<DTASOF>20260228</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>
"""


def ofx_bank() -> Export:
    return Export("checking.ofx", OFX_V1.encode("cp1252"), [
        tx("9876543/20260203-1", "2026-02-03", "-1036.47", "USD", "ACME SUPPLIES", "Invoice 4411", "", "9876543"),
        tx("9876543/20260205-7", "2026-02-05", "2500.00", "USD", "CLIENT PAYMENT", "", "1044", "9876543"),
    ], description="OFX 1.02 (SGML) bank statement: ids are FITIDs within their account")


OFX_V2 = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>
<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS><DTSERVER>20260401</DTSERVER><LANGUAGE>ENG</LANGUAGE></SONRS></SIGNONMSGSRSV1>
<CREDITCARDMSGSRSV1><CCSTMTTRNRS><TRNUID>2</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
<CCSTMTRS><CURDEF>EUR</CURDEF><CCACCTFROM><ACCTID>4111111111111111</ACCTID></CCACCTFROM>
<BANKTRANLIST><DTSTART>20260301</DTSTART><DTEND>20260331</DTEND>
<STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20260310</DTPOSTED><TRNAMT>-59.90</TRNAMT><FITID>CC-1</FITID><NAME>LUFTHANSA</NAME><MEMO>Ticket</MEMO></STMTTRN>
</BANKTRANLIST></CCSTMTRS></CCSTMTTRNRS></CREDITCARDMSGSRSV1></OFX>
"""


def qfx_card() -> Export:
    return Export("card.qfx", OFX_V2.encode(), [
        tx("4111111111111111/CC-1", "2026-03-10", "-59.90", "EUR", "LUFTHANSA", "Ticket", "", "4111111111111111"),
    ], description="OFX 2.2 (XML) credit-card statement named .qfx")


def jsonl_foreign_keys() -> Export:
    rows = [{"Buchungsnr": "J-1", "Buchungstag": "01.09.2026", "Betrag": "-1.200,00", "Text": "Miete"},
            {"Buchungsnr": "J-2", "Buchungstag": "02.09.2026", "Betrag": "350,50", "Text": "Erstattung"}]
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    return Export("buchungen.jsonl", content, [
        tx("J-1", "2026-09-01", "-1200.00", "EUR", "", "Miete"),
        tx("J-2", "2026-09-02", "350.50", "EUR", "", "Erstattung"),
    ], mapping={"id": "Buchungsnr", "date": "Buchungstag", "amount": "Betrag", "description": "Text",
                "decimal_separator": ",", "date_format": "%d.%m.%Y", "default_currency": "EUR"},
        description="JSON lines with foreign keys, renamed by a mapping")


def gzipped_soll_haben() -> Export:
    text = ("Datum;Buchungstext;Soll;Haben;Belegnummer\n"
            "10.10.2026;Wareneinkauf;1.999,00;;B-77\n"
            "11.10.2026;Kundenzahlung;;5.000,00;B-78\n")
    return Export("journal.csv.gz", gzip.compress(text.encode()), [
        tx(None, "2026-10-10", "-1999.00", "EUR", "", "Wareneinkauf", "B-77"),
        tx(None, "2026-10-11", "5000.00", "EUR", "", "Kundenzahlung", "B-78"),
    ], mapping={"default_currency": "EUR"}, description="gzip, German Soll/Haben split columns")


def inverted_sign() -> Export:
    text = "Date,Vendor,Amount,Currency\n2026-11-02,Stationery,45.00,EUR\n2026-11-03,Customer refund,-10.00,EUR\n"
    return Export("card_export.csv", text.encode(), [
        tx(None, "2026-11-02", "-45.00", "EUR", "Stationery"),
        tx(None, "2026-11-03", "10.00", "EUR", "Customer refund"),
    ], mapping={"sign": "inverted"}, description="debits shown positive: sign inverted by the mapping")


def duplicate_rows() -> Export:
    text = ("Date,Description,Amount,Currency\n2026-12-01,Coffee,-3.50,EUR\n2026-12-01,Coffee,-3.50,EUR\n"
            "2026-12-02,Lunch,-12.00,EUR\n")
    return Export("twice_coffee.csv", text.encode(), [
        tx(None, "2026-12-01", "-3.50", "EUR", "", "Coffee"),
        tx(None, "2026-12-01", "-3.50", "EUR", "", "Coffee"),
        tx(None, "2026-12-02", "-12.00", "EUR", "", "Lunch"),
    ], description="two genuinely identical rows stay two rows")


def ofx_gzipped() -> Export:
    text = OFX_V1.replace("<FITID>2026", "<FITID>GZ-2026")
    return Export("checking.ofx.gz", gzip.compress(text.encode("cp1252")), [
        tx("9876543/GZ-20260203-1", "2026-02-03", "-1036.47", "USD", "ACME SUPPLIES", "Invoice 4411", "", "9876543"),
        tx("9876543/GZ-20260205-7", "2026-02-05", "2500.00", "USD", "CLIENT PAYMENT", "", "1044", "9876543"),
    ], description="gzip of an OFX 1.02 statement (ofxtools needs a byte stream with a text mode)")


def qfx_gzipped() -> Export:
    text = OFX_V2.replace("<FITID>CC-1", "<FITID>GZ-CC-1")
    return Export("card.qfx.gz", gzip.compress(text.encode()), [
        tx("4111111111111111/GZ-CC-1", "2026-03-10", "-59.90", "EUR", "LUFTHANSA", "Ticket", "", "4111111111111111"),
    ], description="gzip of an OFX 2.2 card statement named .qfx")


def ing_duplicate_currency() -> Export:
    text = ("Umsatzanzeige;Datei erstellt am: 02.04.2026 10:15\n\n"
            "IBAN;DE27 1001 0010 0987 6543 21\nKontoname;Girokonto\nBank;ING\n"
            "Zeitraum;01.03.2026 - 31.03.2026\nSaldo;2.468,30;EUR\n\nSortierung;Datum absteigend\n\n"
            "In der CSV-Datei finden Sie alle bereits gebuchten Umsätze.\n\n"
            "Buchung;Valuta;Auftraggeber/Empfänger;Buchungstext;Verwendungszweck;Saldo;Währung;Betrag;Währung\n"
            "28.03.2026;28.03.2026;Hotel Kranich;Lastschrift;Rechnung 8812 Zimmer 4 Naechte;2.468,30;EUR;-612,40;USD\n"
            "14.03.2026;13.03.2026;Arbeitgeber GmbH;Gutschrift;Gehalt Maerz 2026;3.080,70;EUR;3.080,70;EUR\n")
    return Export("Umsatzanzeige_ING.csv", text.encode("utf-8-sig"), [
        tx(None, "2026-03-28", "-612.40", "USD", "Hotel Kranich", "Rechnung 8812 Zimmer 4 Naechte", "", ING_IBAN),
        tx(None, "2026-03-14", "3080.70", "EUR", "Arbeitgeber GmbH", "Gehalt Maerz 2026", "", ING_IBAN),
    ], description="ING: 'Währung' twice (balance's and amount's), long preamble, Buchung/Verwendungszweck")


ING_IBAN = "DE27 1001 0010 0987 6543 21"


def chase_details() -> Export:
    text = ("Details,Posting Date,Description,Amount,Type,Balance,Check or Slip #\n"
            "DEBIT,03/15/2026,AMAZON MKTPLACE PMTS,-45.99,ACH_DEBIT,1954.01,\n"
            "CREDIT,03/02/2026,PAYROLL ACME CORP,2500.00,ACH_CREDIT,2000.00,\n"
            "CHECK,03/04/2026,CHECK 1045,-120.00,CHECK_PAID,1880.00,1045\n")
    return Export("Chase1234_Activity_20260331.CSV", text.encode(), [
        tx(None, "2026-03-15", "-45.99", "USD", "", "AMAZON MKTPLACE PMTS"),
        tx(None, "2026-03-02", "2500.00", "USD", "", "PAYROLL ACME CORP"),
        tx(None, "2026-03-04", "-120.00", "USD", "", "CHECK 1045", "1045"),
    ], mapping={"default_currency": "USD"},
        description="Chase: 'Details' (DEBIT/CREDIT) loses to 'Description'; Posting Date; Check or Slip #")


def colon_preamble() -> Export:
    text = ("Account:,0123456789,Currency:,USD\n"
            "Statement period:,2026-01-01,to:,2026-01-31\n\n"
            "Date,Description,Amount,Currency\n"
            "2026-01-13,Wire fee,-15.00,USD\n"
            "2026-01-20,Customer transfer,\"4,250.00\",USD\n")
    return Export("account_statement.csv", text.encode(), [
        tx(None, "2026-01-13", "-15.00", "USD", "", "Wire fee", "", "0123456789"),
        tx(None, "2026-01-20", "4250.00", "USD", "", "Customer transfer", "", "0123456789"),
    ], description="'Label:' preamble lines that name fields (Account:, Currency:) are not the header")


def dashed_us_dates() -> Export:
    text = ("Date,Payee,Amount,Currency\n"
            "03-15-2026,Office Depot,-89.10,USD\n"
            "03-04-2026,Client LLC,1200.00,USD\n")
    return Export("dashed_dates.csv", text.encode(), [
        tx(None, "2026-03-15", "-89.10", "USD", "Office Depot"),
        tx(None, "2026-03-04", "1200.00", "USD", "Client LLC"),
    ], description="MM-DD-YYYY with dashes, decided from the column (03-04 is March 4th)")


def sparkasse_camt() -> Export:
    text = ('"Auftragskonto";"Buchungstag";"Valutadatum";"Buchungstext";"Verwendungszweck";'
            '"Beguenstigter/Zahlungspflichtiger";"Kontonummer/IBAN";"Betrag";"Waehrung";"Info"\n'
            '"DE12500105170648489890";"15.03.26";"15.03.26";"FOLGELASTSCHRIFT";"Strom Abschlag Maerz";'
            '"Stadtwerke Musterstadt";"DE02120300000000202051";"-84,00";"EUR";"Umsatz gebucht"\n'
            '"DE12500105170648489890";"16.03.26";"16.03.26";"GUTSCHR. UEBERWEISUNG";"Miete Laden 3";'
            '"Schmidt, Petra";"DE89370400440532013000";"1.150,00";"EUR";"Umsatz gebucht"\n')
    return Export("20260331-12345678-umsatz.CSV", text.encode("cp1252"), [
        tx(None, "2026-03-15", "-84.00", "EUR", "Stadtwerke Musterstadt", "Strom Abschlag Maerz", "",
           "DE12500105170648489890"),
        tx(None, "2026-03-16", "1150.00", "EUR", "Schmidt, Petra", "Miete Laden 3", "", "DE12500105170648489890"),
    ], description="Sparkasse CAMT CSV: Verwendungszweck beats Buchungstext, Beguenstigter/Zahlungspflichtiger")


def canonical_without_ids() -> Export:
    text = ("date,amount,currency,counterparty,description\n"
            "13/03/2024,\"1,234.50\",EUR,Nordwind AG,Consulting\n"
            "05/03/2024,12.00,EUR,Kiosk,Paper\n"
            "05/03/2024,12.00,EUR,Kiosk,Paper\n")
    return Export("zenith_fields.csv", text.encode(), [
        tx(None, "2024-03-13", "1234.50", "EUR", "Nordwind AG", "Consulting"),
        tx(None, "2024-03-05", "12.00", "EUR", "Kiosk", "Paper"),
        tx(None, "2024-03-05", "12.00", "EUR", "Kiosk", "Paper"),
    ], description="Zenith's own field names without an id column: DD/MM decided by 13/03, ids derived")


def json_without_ids() -> Export:
    rows = [{"date": "2026-05-10", "amount": "-20.00", "currency": "EUR", "description": "Taxi"},
            {"date": "2026-05-10", "amount": "-20.00", "currency": "EUR", "description": "Taxi"},
            {"date": "2026-05-11", "amount": 310.5, "currency": "EUR", "counterparty": "Hotel Adler"}]
    return Export("expenses.json", json.dumps(rows).encode(), [
        tx(None, "2026-05-10", "-20.00", "EUR", "", "Taxi"),
        tx(None, "2026-05-10", "-20.00", "EUR", "", "Taxi"),
        tx(None, "2026-05-11", "310.50", "EUR", "Hotel Adler"),
    ], description="JSON records without ids: derived, identical ones kept apart")


def corpus() -> list[Export]:
    return [german_sparkasse(), us_brokerage(), uk_bank(), french_bank(), spanish_bank(), headerless(),
            utf16_tsv(), pipes_cp1252(), signs(), workbook(), ofx_bank(), qfx_card(), jsonl_foreign_keys(),
            gzipped_soll_haben(), inverted_sign(), duplicate_rows(), ofx_gzipped(), qfx_gzipped(),
            ing_duplicate_currency(), chase_details(), colon_preamble(), dashed_us_dates(), sparkasse_camt(),
            canonical_without_ids(), json_without_ids(), *issue19_corpus()]


# Issue 19: layouts of real exports that did not import right, reproduced by hand with the
# values their upstream importers' tests expect (the files themselves stay out of the
# repository: /work/corpus holds them, with bench/corpus_score.py).

def lloyds_trailing_comma() -> Export:
    """Lloyds (UK): the header ends with a comma (one more, unnamed, field than every row),
    split debit/credit amounts, the holder's 'Account Number' on every row, no currency."""
    text = ("Transaction Date,Transaction Type,Sort Code,Account Number,Transaction Description,Debit Amount,"
            "Credit Amount,Balance,\n"
            "15/01/2024,DEB,'99-88-74,1515152252,ACME STORE CD 1417    14JAN24,8.99,,2040.59\n"
            "01/12/2023,FPI,'99-88-74,1515152252,HHHHH LTD RP555000111222333 207348     10 01DEC23 16:05,,2000,"
            "8029.49\n")
    return Export("lloyds_statement.csv", text.encode(), [
        tx(None, "2024-01-15", "-8.99", "GBP", "", "ACME STORE CD 1417 14JAN24", "", "1515152252"),
        tx(None, "2023-12-01", "2000", "GBP", "", "HHHHH LTD RP555000111222333 207348 10 01DEC23 16:05", "",
           "1515152252"),
    ], mapping={"default_currency": "GBP"}, description="header one field wider than the rows (trailing comma)")


def ing_nl_af_bij() -> Export:
    """ING (Netherlands): unsigned 'Bedrag (EUR)' signed by the 'Af Bij' column, the currency
    in the amount's header, the holder's 'Rekening' beside the counterparty's 'Tegenrekening'."""
    text = ('"Datum","Naam / Omschrijving","Rekening","Tegenrekening","Code","Af Bij","Bedrag (EUR)",'
            '"Mutatiesoort","Mededelingen"\n'
            '"20200213","Albert Heijn 1234","NL99INGB9999999999","","BA","Af","1,25","Betaalautomaat",'
            '"Pasvolgnr: 003 13-02-2020 16:22"\n'
            '"20200214","J. Jansen","NL99INGB9999999999","NL12RABO0123456789","GT","Bij","250,00",'
            '"Online bankieren","Huur februari"\n')
    return Export("NL99INGB9999999999_01-02-2020_29-02-2020.csv", text.encode(), [
        tx(None, "2020-02-13", "-1.25", "EUR", "Albert Heijn 1234", "Pasvolgnr: 003 13-02-2020 16:22", "",
           "NL99INGB9999999999"),
        tx(None, "2020-02-14", "250.00", "EUR", "J. Jansen", "Huur februari", "", "NL99INGB9999999999"),
    ], description="Dutch headers, sign from 'Af Bij', currency from 'Bedrag (EUR)'")


def dkb_preamble_account() -> Export:
    """DKB (Germany, 2023 layout): the holder's account only above the header ('Girokonto'),
    'Betrag (€)' naming the currency, an 'IBAN' column that is the counterparty's."""
    text = ('"Girokonto";"DE07123412341234123412"\n"Zeitraum:";"01.01.2024 - 31.01.2024"\n'
            '"Kontostand vom 31.01.2024:";"1.234,56 €"\n""\n'
            '"Buchungsdatum";"Wertstellung";"Status";"Zahlungsempfänger*in";"Verwendungszweck";"Umsatztyp";'
            '"IBAN";"Betrag (€)";"Gläubiger-ID";"Mandatsreferenz";"Kundenreferenz"\n'
            '"15.01.24";"15.01.24";"Gebucht";"Stadtwerke Musterstadt";"Abschlag Januar";"Ausgang";'
            '"DE02120300000000202051";"-84,00";"DE98ZZZ09999999999";"M-1";""\n'
            '"16.01.24";"16.01.24";"Gebucht";"Arbeitgeber GmbH";"Gehalt Januar";"Eingang";'
            '"DE89370400440532013000";"3.000,00";"";"";""\n')
    return Export("dkb_girokonto.csv", text.encode("utf-8-sig"), [
        tx(None, "2024-01-15", "-84.00", "EUR", "Stadtwerke Musterstadt", "Abschlag Januar", "",
           "DE07123412341234123412"),
        tx(None, "2024-01-16", "3000.00", "EUR", "Arbeitgeber GmbH", "Gehalt Januar", "", "DE07123412341234123412"),
    ], description="account from the preamble, currency from 'Betrag (€)', the payee's IBAN is not the account")


def revolut_timestamps() -> Export:
    """Revolut: 'Completed Date' with a time of day, a 'State' column, per-row currency."""
    text = ("Type,Product,Started Date,Completed Date,Description,Amount,Fee,Currency,State,Balance\n"
            "TRANSFER,Current,2021-09-05 11:32:41,2021-09-05 11:32:41,transfer,-250.00,0.00,EUR,COMPLETED,750.00\n"
            "CARD_PAYMENT,Current,2021-09-05 18:22:20,2021-09-06 09:01:02,company äöå,-9.50,0.00,EUR,COMPLETED,"
            "740.50\n")
    return Export("account-statement_2021-09.csv", text.encode(), [
        tx(None, "2021-09-05", "-250.00", "EUR", "", "transfer"),
        tx(None, "2021-09-06", "-9.50", "EUR", "", "company äöå"),
    ], description="date and time stamps, 'Completed Date' is the booking date")


def soll_haben_marker() -> Export:
    """A German bank's unsigned 'Umsatz' with an 'S'/'H' (Soll/Haben) column."""
    text = ("Buchungstag;Text;Umsatz;S/H;Währung\n"
            "02.01.2024;Miete;750,00;S;EUR\n"
            "03.01.2024;Erstattung;20,00;H;EUR\n")
    return Export("umsaetze_sh.csv", text.encode("cp1252"), [
        tx(None, "2024-01-02", "-750.00", "EUR", "", "Miete"),
        tx(None, "2024-01-03", "20.00", "EUR", "", "Erstattung"),
    ], description="sign from an S/H column")


def italian_entrate_uscite() -> Export:
    """Fineco (Italy): 'Data', 'Entrate', 'Uscite', 'Descrizione'; the currency is implied."""
    text = ("Data;Entrate;Uscite;Descrizione;Descrizione_Completa\n"
            "05/03/2024;;-35,20;Pagamento Visa Debit;SUPERMERCATO ROMA\n"
            "27/02/2024;1.500,00;;Bonifico SEPA;STIPENDIO FEBBRAIO\n")
    return Export("movimenti_fineco.csv", text.encode(), [
        tx(None, "2024-03-05", "-35.20", "EUR", "", "Pagamento Visa Debit"),
        tx(None, "2024-02-27", "1500.00", "EUR", "", "Bonifico SEPA"),
    ], mapping={"default_currency": "EUR"}, description="Italian headers")


def portuguese_debito_credito() -> Export:
    """A Portuguese bank: 'Data Mov.', 'Data Valor', 'Descrição', 'Débito', 'Crédito'."""
    text = ("Data Mov.;Data Valor;Descrição;Débito;Crédito;Saldo\n"
            "12-03-2024;12-03-2024;COMPRA CONTINENTE;45,10;;1.204,90\n"
            "15-03-2024;15-03-2024;TRF SALARIO;;1.250,00;2.454,90\n")
    return Export("extrato.csv", text.encode("cp1252"), [
        tx(None, "2024-03-12", "-45.10", "EUR", "", "COMPRA CONTINENTE"),
        tx(None, "2024-03-15", "1250.00", "EUR", "", "TRF SALARIO"),
    ], mapping={"default_currency": "EUR"}, description="Portuguese headers, DD-MM-YYYY")


def journal_synonyms() -> Export:
    """A ledger export: 'JournalDate' as 23-Jan-15, 'total', 'Monn.', 'Reason', 'Partner Name'."""
    text = ("JournalDate,Partner Name,Reason,total,Monn.\n"
            "23-Jan-15,Globex SA,Consulting,-1200.00,CHF\n"
            "24-Jan-15,Initech AG,Refund,80.00,CHF\n")
    return Export("journal_2015.csv", text.encode(), [
        tx(None, "2015-01-23", "-1200.00", "CHF", "Globex SA", "Consulting"),
        tx(None, "2015-01-24", "80.00", "CHF", "Initech AG", "Refund"),
    ], description="header synonyms, DD-Mon-YY dates")


OFX_BLANK_LINES = "\n\n\n  \n" + OFX_V1.replace("<FITID>2026", "<FITID>BL-2026")


def ofx_leading_blank_lines() -> Export:
    return Export("download.ofx", OFX_BLANK_LINES.encode("cp1252"), [
        tx("9876543/BL-20260203-1", "2026-02-03", "-1036.47", "USD", "ACME SUPPLIES", "Invoice 4411", "", "9876543"),
        tx("9876543/BL-20260205-7", "2026-02-05", "2500.00", "USD", "CLIENT PAYMENT", "", "1044", "9876543"),
    ], description="blank lines before the OFX header")


MT940_ING = """0000 01INGBNL2AXXXX00001
940 00
:20:MPBZ
:25:0001234567
:28C:000
:60F:C100722EUR0,00
:61:100722D25,03NTRFNONREF
:86: RC AFREKENING BETALINGSVERKEER
BETREFT REKENING 4715589 PERIODE: 01-10-2010 / 31-12-2010
:61:100723C1,00NTRFNONREF
:86:/NAME/Hr S Marechal/REMI/Betaling transactiedatum 22-07-2010/
:62F:D100723EUR24,03
-XXX
"""


def mt940_ing() -> Export:
    return Export("ing.sta", MT940_ING.encode(), [
        tx(None, "2010-07-22", "-25.03", "EUR", "",
           "RC AFREKENING BETALINGSVERKEER BETREFT REKENING 4715589 PERIODE: 01-10-2010 / 31-12-2010", "",
           "0001234567"),
        tx(None, "2010-07-23", "1.00", "EUR", "Hr S Marechal",
           "/NAME/Hr S Marechal/REMI/Betaling transactiedatum 22-07-2010/", "", "0001234567"),
    ], description="SWIFT MT940 (ING layout), read with the mt-940 library")


CAMT053 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
 <BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId><CreDtTm>2016-01-01T00:00:00</CreDtTm></GrpHdr>
  <Stmt><Id>S1</Id><CreDtTm>2016-01-01T00:00:00</CreDtTm>
   <Acct><Id><IBAN>LT000000000000000000</IBAN></Id><Ccy>EUR</Ccy></Acct>
   <Ntry><Amt Ccy="EUR">0.29</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2015-12-31</Dt></BookgDt><ValDt><Dt>2016-01-01</Dt></ValDt><AcctSvcrRef>FC1261858984</AcctSvcrRef>
    <NtryDtls><TxDtls><RltdPties><Cdtr><Nm>AB DNB Bankas</Nm></Cdtr></RltdPties>
     <RmtInf><Ustrd>Sąskaitos aptarnavimo mokestis</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
   <Ntry><Amt Ccy="EUR">125.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2015-12-15</Dt></BookgDt><ValDt><Dt>2015-12-15</Dt></ValDt><AcctSvcrRef>FC1261000001</AcctSvcrRef>
    <NtryDtls><TxDtls><Refs><EndToEndId>E2E-7</EndToEndId></Refs><RltdPties><Dbtr><Nm>UAB Klientas</Nm></Dbtr>
     </RltdPties><RmtInf><Ustrd>Sąskaita 15</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
  </Stmt></BkToCstmrStmt></Document>
"""


def camt053_statement() -> Export:
    return Export("statement.camt053.xml", CAMT053.encode(), [
        tx("LT000000000000000000/FC1261858984", "2015-12-31", "-0.29", "EUR", "AB DNB Bankas",
           "Sąskaitos aptarnavimo mokestis", "FC1261858984", "LT000000000000000000"),
        tx("LT000000000000000000/FC1261000001", "2015-12-15", "125.00", "EUR", "UAB Klientas", "Sąskaita 15",
           "E2E-7", "LT000000000000000000"),
    ], description="ISO 20022 CAMT.053 (a Lithuanian bank's layout), read with defusedxml")


def issue19_corpus() -> list[Export]:
    return [lloyds_trailing_comma(), ing_nl_af_bij(), dkb_preamble_account(), revolut_timestamps(),
            soll_haben_marker(), italian_entrate_uscite(), portuguese_debito_credito(), journal_synonyms(),
            ofx_leading_blank_lines(), mt940_ing(), camt053_statement()]


# Issue 19, CSV side: layouts of the real exports of /work/corpus that still failed, written
# again by hand (the same structure and quirks, other values).

def raiffeisen_headerless() -> Export:
    """Raiffeisen (Austria): no header row; booking date, text, value date, amount, currency and
    a time stamp, each row ending with a semicolon; Windows-1252."""
    text = ('28.06.2013;"0,125 % p.a. Habenzinsen ab 01.04.13";01.07.2013;0,58;EUR;28.06.2013 00:00:30:989;\n'
            '28.06.2013;"Kapitalertragsteuer";01.07.2013;-0,15;EUR;28.06.2013 00:00:31:010;\n'
            '01.07.2013;"ELBA-INTERNET Empfänger: Hausverwaltung Verwendungszweck: Miete Juli";01.07.2013;'
            '-1.175,16;EUR;29.06.2013 09:16:23:134;\n')
    return Export("raiffeisen.csv", text.encode("cp1252"), [
        tx(None, "2013-06-28", "0.58", "EUR", "", "0,125 % p.a. Habenzinsen ab 01.04.13"),
        tx(None, "2013-06-28", "-0.15", "EUR", "", "Kapitalertragsteuer"),
        tx(None, "2013-07-01", "-1175.16", "EUR", "", "ELBA-INTERNET Empfänger: Hausverwaltung Verwendungszweck: "
                                                       "Miete Juli"),
    ], description="no header row: columns guessed by content")


def easybank_headerless() -> Export:
    """easybank (Austria): no header row; the holder's account first on every row, the text,
    booking and value dates, a signed amount ('+30,99') and its currency."""
    text = ("AT123456789012345678;Einbehaltene KESt      BG/000000001     ;01.01.2014;31.12.2013;-0,42;EUR\n"
            "AT123456789012345678;Zinsen HABEN           BG/000000002     ;01.01.2014;31.12.2013;+1,23;EUR\n"
            "AT123456789012345678;Abbuchung Einzug       OG/000000004 Versandhandel;08.01.2014;08.01.2014;"
            "-1.001,00;EUR\n")
    return Export("easybank.csv", text.encode("cp1252"), [
        tx(None, "2014-01-01", "-0.42", "EUR", "", "Einbehaltene KESt      BG/000000001", "", "AT123456789012345678"),
        tx(None, "2014-01-01", "1.23", "EUR", "", "Zinsen HABEN           BG/000000002", "", "AT123456789012345678"),
        tx(None, "2014-01-08", "-1001.00", "EUR", "", "Abbuchung Einzug       OG/000000004 Versandhandel", "",
           "AT123456789012345678"),
    ], description="no header row: the holder's account is the column that never changes")


def asn_headerless() -> Export:
    """ASN (Netherlands): no header row; the holder's IBAN, the counterparty's IBAN and name, a
    balance with its currency before the amount with its own, integer code columns."""
    text = ("17-06-2022,NL00ASNB9999999999,NL99ASNB0000000000,J JANSEN,,,,EUR,130.44,EUR,223.77,17-06-2022,"
            "17-06-2022,2754,NGM,51392971,,'Terugbetaling lening',26\n"
            "25-06-2022,NL00ASNB9999999999,,,,,,EUR,354.21,EUR,-2.20,25-06-2022,25-06-2022,7241,MSC,50951652,,"
            "'Kosten gebruik betaalrekening',26\n"
            "28-06-2022,NL00ASNB9999999999,NL24ABNA0000000000,DE KRANT B V,,,,EUR,352.01,EUR,-22.95,28-06-2022,"
            "28-06-2022,9714,EIC,00000000,,'ABONNR 00000000 DE KRANT',26\n")
    return Export("transactie-historie_NL00ASNB9999999999.csv", text.encode(), [
        tx(None, "2022-06-17", "223.77", "EUR", "J JANSEN", "'Terugbetaling lening'", "", "NL00ASNB9999999999"),
        tx(None, "2022-06-25", "-2.20", "EUR", "", "'Kosten gebruik betaalrekening'", "", "NL00ASNB9999999999"),
        tx(None, "2022-06-28", "-22.95", "EUR", "DE KRANT B V", "'ABONNR 00000000 DE KRANT'", "",
           "NL00ASNB9999999999"),
    ], description="no header row: the signed amount beside a balance, the currency nearest to it")


def sberbank_russian() -> Export:
    """Sberbank (Russia): Cyrillic headers in UTF-8 with a BOM; the amount in the account's
    currency beside the amount in the operation's, no account currency column."""
    text = ("Тип карты;Номер карты;Дата совершения операции;Дата обработки операции;Код авторизации;"
            "Тип операции;Город совершения операции;Страна совершения операции;Описание;Валюта операции;"
            "Сумма в валюте операции;Сумма в валюте счета;\n"
            "Основная;*6833;31.10.2019;31.10.2019;204840;4829;MOSCOW;RUS;SBOL перевод И. ИВАНОВ;RUB;-4320,40;"
            "-4320,40;\n"
            "Основная;*6833;15.06.2019;17.06.2019;209127;5411;PRAHA;CZE;ALBERT HYPERMARKET;CZK;-350,00;-1003,75;\n")
    return Export("sberbank.csv", text.encode("utf-8-sig"), [
        tx(None, "2019-10-31", "-4320.40", "RUB", "", "SBOL перевод И. ИВАНОВ", "204840"),
        tx(None, "2019-06-17", "-1003.75", "RUB", "", "ALBERT HYPERMARKET", "209127"),
    ], mapping={"default_currency": "RUB"}, description="Russian headers: the processing date, the account's amount")


def alfabank_cp1251() -> Export:
    """Alfa-Bank (Russia): Cyrillic headers in Windows-1251, income and expense columns."""
    text = ("Тип счёта;Номер счета;Валюта;Дата операции;Референс проводки;Описание операции;Приход;Расход;\n"
            "Мой счет;40817810000000000001;RUR;31.05.17;ABCDEF11111111111;Перечисление зарплаты за май;"
            "33123,56;0;\n"
            "Мой счет;40817810000000000001;RUR;03.05.17;ABCDEF22222222222;Комиссия за переводы;0;50;\n")
    return Export("alfabank.csv", text.encode("cp1251"), [
        tx(None, "2017-05-31", "33123.56", "RUR", "", "Перечисление зарплаты за май", "ABCDEF11111111111",
           "40817810000000000001"),
        tx(None, "2017-05-03", "-50", "RUR", "", "Комиссия за переводы", "ABCDEF22222222222",
           "40817810000000000001"),
    ], description="Windows-1251 told from Windows-1252, Приход/Расход")


def swedbank_lithuanian() -> Export:
    """Swedbank (Lithuania): Lithuanian headers, a header of 17 fields over rows of 13 or 14
    (trailing columns left out), unsigned amounts signed by 'D/K', and opening balance,
    turnover and closing balance rows (record types 10, 82, 86) among the movements."""
    text = ('"Sąskaitos Nr.","","Data","Gavėjas","Paaiškinimai","Suma","Valiuta","D/K","Įrašo Nr.","Kodas",'
            '"Įmokos kodas","Dok. Nr.","Kliento kodas mokėtojo IS","Kliento kodas","Pradinis mokėtojas",'
            '"Galutinis gavėjas",\n'
            '"LT797300010000000001","10","2012-01-01","","Likutis pradžiai","2123.82","EUR","K","","AS","","",\n'
            '"LT797300010000000001","20","2012-01-02","Kavinė Vilnius","PIRKINYS 2011.12.30 14.34 EUR","14.34",'
            '"EUR","D","2012010200041787","K","","","",\n'
            '"LT797300010000000001","20","2012-01-10","Company","Salary","1600.00","EUR","K","2012011000673562",'
            '"MK","","5050","",\n'
            '"LT797300010000000001","82","2012-01-31","","Apyvarta","14.34","EUR","D","","K2","","",\n'
            '"LT797300010000000001","86","2012-01-31","","Likutis pabaigai","3709.48","EUR","K","","LS","","",\n')
    account = "LT797300010000000001"
    return Export("swedbank.csv", text.encode(), [
        tx(None, "2012-01-02", "-14.34", "EUR", "Kavinė Vilnius", "PIRKINYS 2011.12.30 14.34 EUR", "2012010200041787",
           account),
        tx(None, "2012-01-10", "1600.00", "EUR", "Company", "Salary", "2012011000673562", account),
    ], description="Lithuanian headers, narrower rows, balance and turnover rows skipped with their reason")


def bancoposta_italian() -> Export:
    """BancoPosta (Italy): 'Addebiti'/'Accrediti', the text in 'Descrizione operazioni', opening
    and closing balance rows ('SALDO INIZIALE', '|SALDO FINALE') with a stray '|' in their
    amount, and a 'Valuta' column whose own dates fit both orders."""
    text = ("Data;Valuta;Addebiti;Accrediti;Descrizione operazioni\n"
            "31/12/17;;;100,95|;SALDO INIZIALE\n"
            "01/08/18;01/08/18;100,00;;VOSTRA DISPOS. DI BONIFICO BENEF Mario Rossi PER Auguri\n"
            "02/08/18;02/08/18;;2.000,00;BONIFICO A VOSTRO FAVORE DA Mario Rossi\n"
            "31/08/18;;;2.000,95;|SALDO FINALE\n")
    return Export("bancoposta.csv", text.encode(), [
        tx(None, "2018-08-01", "-100.00", "EUR", "", "VOSTRA DISPOS. DI BONIFICO BENEF Mario Rossi PER Auguri"),
        tx(None, "2018-08-02", "2000.00", "EUR", "", "BONIFICO A VOSTRO FAVORE DA Mario Rossi"),
    ], mapping={"default_currency": "EUR"}, description="balance rows skipped; 'Valuta' ordered like 'Data'")


def livebank_wide_rows() -> Export:
    """Livebank (Austria): a 10-column header over rows of 11 to 13 fields, the bank's text
    split over the fields after 'Umsatztext'; notices with a zero amount among the movements."""
    text = ("Kontonummer;Auszugsnummer;Buchungsdatum;Valutadatum;Umsatzzeit;Zahlungsreferenz;Waehrung;Betrag;"
            "Buchungstext;Umsatztext\n"
            '12345678;1;2013-07-03;2013-07-03;2013-07-03-08.21.36.47192;"";EUR;150,00;"Datenträger-Umsatz";'
            'Firma A;"Rechnung 7";"REF: 0001"\n'
            '12345678;1;2013-07-01;2013-07-01;2013-07-01-09.08.26.618116;"";EUR;0,00;"Verständigung";'
            '"Änderungsmitteilung";"Bonuszins 0,60 %"\n'
            '12345678;1;2013-06-10;2013-06-10;2013-06-10-10.09.26.114844;"";EUR;-100,00;"Internetauftrag";'
            '"Miete";"Juni"\n')
    return Export("livebank.csv", text.encode("cp1252"), [
        tx(None, "2013-07-03", "150.00", "EUR", "", "Datenträger-Umsatz", "", "12345678"),
        tx(None, "2013-06-10", "-100.00", "EUR", "", "Internetauftrag", "", "12345678"),
    ], mapping={"skip_zero_amounts": True},
        description="wider rows: the extra fields continue the last column; zero amounts skipped by the mapping")


def danske_merged_fields() -> Export:
    """Danske (Lithuania): a 12-field header over 10-field rows, in which Address, City and
    Country are one quoted field (',Vilnius08500,LT'), memos spanning lines, dates written
    2012:03:01, Windows-1257."""
    text = ('Date,Bank,Branch,Address,City,Country,Name,Memo,MemoConv,MemoDet,Amount,\n'
            '2012:03:01,,"",",Vilnius08500,LT","Paslaugų ir komisinių pajamos","Mokestis už lėšų įskaitymą, '
            'paskirtis:    .\nUžsienio banko mokesčiai: SHA USD0",,"Mokėjimo operacija: suma 1,01 USD",-7.8,\n'
            '2012:03:06,,"",",,","","Mokestis už lėšų, gautų iš kitų bankų, įskaitymą",,"Operacija: suma 500 '
            'LTL, dokumento Nr.7, mokesčio suma 1.20 LTL",-.46,\n'
            '2012:03:07,,"",",Vilnius08500,LT","Jonas Jonaitis",,2.6014 USD/LTL ,,-881.55,\n')
    return Export("danske.csv", text.encode("cp1257"), [
        tx(None, "2012-03-01", "-7.8", "LTL", "Paslaugų ir komisinių pajamos",
           "Mokestis už lėšų įskaitymą, paskirtis:    .\nUžsienio banko mokesčiai: SHA USD0"),
        tx(None, "2012-03-06", "-0.46", "LTL", "", "Mokestis už lėšų, gautų iš kitų bankų, įskaitymą"),
        tx(None, "2012-03-07", "-881.55", "LTL", "Jonas Jonaitis", ""),
    ], mapping={"default_currency": "LTL"}, description="narrower rows: one quoted field held the missing ones")


def knab_credit_debet() -> Export:
    """Knab (Netherlands): a title line, unsigned 'Bedrag' signed by 'CreditDebet' (D/C)."""
    text = ("KNAB EXPORT;;;;;;\n"
            "Rekeningnummer;Transactiedatum;Valutacode;CreditDebet;Bedrag;Tegenrekeninghouder;Omschrijving;\n"
            '"NL99KNAB9999999999";"21-06-2019";"EUR";"D";"827,75";"G. Janssen";"Tresorie";\n'
            '"NL99KNAB9999999999";"22-06-2019";"EUR";"C";"7,02";"Knab";"Rente";\n')
    return Export("knab.csv", text.encode(), [
        tx(None, "2019-06-21", "-827.75", "EUR", "G. Janssen", "Tresorie", "", "NL99KNAB9999999999"),
        tx(None, "2019-06-22", "7.02", "EUR", "Knab", "Rente", "", "NL99KNAB9999999999"),
    ], description="sign from 'CreditDebet'")


def ingdiba_kontonummer() -> Export:
    """ING-DiBa (Austria): the holder's account in 'Kontonummer' (no payee column beside it)."""
    text = ("Kontonummer;Text;Datum;Währung;Soll;Haben\n"
            "12345678001;Habenzinsen;31.12.2013;EUR;0,00;12,23\n"
            "12345678001;Auszahlung;27.08.2013;EUR;1.500,00;0,00\n")
    return Export("ing-diba.csv", text.encode("cp1252"), [
        tx(None, "2013-12-31", "12.23", "EUR", "", "Habenzinsen", "", "12345678001"),
        tx(None, "2013-08-27", "-1500.00", "EUR", "", "Auszahlung", "", "12345678001"),
    ], description="'Kontonummer' is the holder's account when no payee column is named")


def mint_original_description() -> Export:
    """Mint (US): 'Original Description' (the bank's text) beside Mint's cleaned 'Description',
    unsigned amounts signed by 'Transaction Type' (debit/credit)."""
    text = ('"Date","Description","Original Description","Amount","Transaction Type","Category","Account Name"\n'
            '"8/10/2016","Starbucks","STARBUCKS STORE 12345","2.45","debit","Coffee Shops","My Credit Card"\n'
            '"11/27/2013","Transfer","CR CARD PAYMENT ALEXANDRIA VA","66.88","credit","Payment","My Credit Card"\n')
    return Export("mint.csv", text.encode(), [
        tx(None, "2016-08-10", "-2.45", "USD", "", "STARBUCKS STORE 12345", "", "My Credit Card"),
        tx(None, "2013-11-27", "66.88", "USD", "", "CR CARD PAYMENT ALEXANDRIA VA", "", "My Credit Card"),
    ], mapping={"default_currency": "USD"}, description="the bank's original text is the description")


def handelsbanken_workbook() -> Export:
    """Handelsbanken (Sweden): a workbook whose block above the header names the account in one
    cell ('transactionaccount 123 123 123')."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["Handelsbanken"], ["2025-01-03, 15:52"], [], ["transactionaccount 123 123 123"], [],
                ["Kontoform: Allkonto"], ["Period: 2024-11-05 - 2025-01-03"], [],
                ["Reskontradatum", "Transaktionsdatum", "Text", "Belopp", "Saldo"],
                ["2025-01-02", "2025-01-02", "blipp", -238, 779.4],
                ["2025-01-02", "2025-01-02", "blupp", -228, 1017.4]):
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return Export("handelsbanken.xlsx", buffer.getvalue(), [
        tx(None, "2025-01-02", "-238", "SEK", "", "blipp", "", "123 123 123"),
        tx(None, "2025-01-02", "-228", "SEK", "", "blupp", "", "123 123 123"),
    ], mapping={"default_currency": "SEK"}, description="the account above an Excel header")


def issue19_csv_corpus() -> list[Export]:
    return [raiffeisen_headerless(), easybank_headerless(), asn_headerless(), sberbank_russian(), alfabank_cp1251(),
            swedbank_lithuanian(), bancoposta_italian(), livebank_wide_rows(), danske_merged_fields(),
            knab_credit_debet(), ingdiba_kontonummer(), mint_original_description(), handelsbanken_workbook(),
            nordea_finnish_header()]


def nordea_finnish_header() -> Export:
    """Nordea (Finland): a header in a language Zenith has no names for; its columns are read by
    what they hold, as a file without a header's are, the header's names kept for the rest."""
    text = ("Tilinumero:\tFI12 3456 7890 1234 56\n\n"
            "Kirjauspäivä\tArvopäivä\tMaksupäivä\tMäärä\tSaaja/Maksaja\tTilinumero\tTapahtuma\tViite\tViesti\n"
            "02.01.2024\t02.01.2024\t02.01.2024\t-12,50\tKahvila Oy\tFI00 1111 2222 3333 44\tKorttiosto\t\t"
            "Kortti 1234 kahvi ja pulla\n"
            "15.01.2024\t15.01.2024\t15.01.2024\t+2 100,00\tTyönantaja Oy\tFI00 5555 6666 7777 88\tPalkka\t\t"
            "Palkka tammikuu 2024\n")
    return Export("nordea.txt", text.encode(), [
        tx(None, "2024-01-02", "-12.50", "EUR", "", "Kortti 1234 kahvi ja pulla"),
        tx(None, "2024-01-15", "2100.00", "EUR", "", "Palkka tammikuu 2024"),
    ], mapping={"default_currency": "EUR"}, description="unknown header names: columns read by content")


def vtb_pending_card() -> Export:
    """VTB (Russia): the card number in a row of labels over a row of values above the table
    ("Выписка по счету/карте;Номер" over "Карта ...;'462235******0069", with a spreadsheet's
    apostrophe), amounts in the account's currency beside the operation's, and a pending
    payment ("В обработке") with no processing date: its operation date stands in."""
    text = ("Начало периода;2019-07-07\nКонец периода;2019-07-13\n\n"
            "Выписка по счету/карте;Номер\nКарта с кредитной составляющей;'462235******0069\n\n\n"
            "Валюта;Баланс на конец периода;Поступления;Списания;Заблокировано\n"
            "RUR;82 604,01;0,00;-17 351,00;-2 426,96\n\n\n"
            "Номер карты/счета/договора;Дата операции;Дата обработки;Сумма операции;Валюта операции;"
            "Сумма пересчитанная в валюту счета;Валюта счета;Основание;Статус\n"
            "'462235******7428;2019-07-06 00:00:00;2019-07-08;-4,50;EUR;-336,15;RUR;Карта *1234 payee1;Исполнено\n"
            "'462235******7428;2019-07-13 10:48:55;;-600,00;RUR;-600,00;RUR;Карта *1234 MEGAFON;В обработке\n")
    account = "462235******0069"
    return Export("vtb.csv", text.encode("cp1251"), [
        tx(None, "2019-07-08", "-336.15", "RUR", "", "Карта *1234 payee1", "", account),
        tx(None, "2019-07-13", "-600.00", "RUR", "", "Карта *1234 MEGAFON", "", account),
    ], description="account in a preamble table; a pending payment dated by its operation date")
