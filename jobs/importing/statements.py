"""Bank statements in the formats banks send to accounting software: OFX/QFX, SWIFT MT940
and ISO 20022 CAMT.052/053/054.

Each is parsed whole: read first within ZENITH_MAX_OFX_BYTES (the limit of every statement
format; statements are small), with no value longer than a line may be, and within the
request's deadline (jobs.importing.limits). OFX is read by `ofxtools` (pinned in
requirements.txt) and, where its strict reading refuses a file that banks do send (no OFX
header, end tags in the wrong places), by the same tokenizer with forgiving nesting
(`_loose_ofx_tree`); MT940 by the `mt-940` library; CAMT by the standard library's ElementTree
through `defusedxml`, which refuses entity expansion and external references in the
untrusted XML.

Every record carries the statement's account, and its id is scoped by that account: a
statement's transaction references are unique within its account only (issue 19). A
transaction without a reference (none, or a placeholder such as NONREF or NOTPROVIDED), or
whose reference other transactions of the file with other content share, gets an id derived
from its own text within the account (`statement_ids`), so no transaction is merged into
another.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from typing import IO, Any

from jobs.errors import InputError
from jobs.importing.identity import IdDeriver, plain, scoped
from jobs.importing.limits import Budget, read_whole

_CAMT = re.compile(rb"camt\.05[234]|BkToCstmrStmt|BkToCstmrAcctRpt")
_MT940 = re.compile(rb"(?m)^:20:.*\r?\n(?:.*\r?\n){0,3}?:25:")


def sniff(head: bytes, name: str) -> str | None:
    """"camt" or "mt940" when the first bytes (or the name) say so, else None."""
    lowered = (name or "").lower().removesuffix(".gz")
    if _CAMT.search(head[:4096]) and head.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"<"):
        return "camt"
    if lowered.endswith((".sta", ".mt940", ".940", ".swi")) or _MT940.search(head[:4096]):
        return "mt940"
    return None


# What banks write where a reference is required but there is none: SWIFT's NONREF (MT940
# :61: and :20:), ISO 20022's NOTPROVIDED (an EndToEndId the payer did not give). Such a
# "reference" is shared by unrelated transactions, so it is no reference at all.
PLACEHOLDER_REFERENCES = frozenset({"NONREF", "NOTPROVIDED", "NOT PROVIDED"})


def real_reference(text: str | None) -> str:
    """`text` trimmed, or "" when it is empty or a placeholder (PLACEHOLDER_REFERENCES, any case)."""
    reference = (text or "").strip()
    return "" if reference.upper() in PLACEHOLDER_REFERENCES else reference


def statement_ids(account: str, entries: Sequence[tuple[str, Any]]) -> list[str]:
    """One id per entry, given as (reference, content as the file wrote it), in order.

    Guarantees: a reference that names one transaction of the file (however often that same
    transaction is repeated) gives "<account>/<reference>", so a statement read again, or in
    another file, gives the same id; an entry without a real reference, or whose reference
    other entries with other content share (a bank reusing a reference for a batch), gets an
    id derived from its content and occurrence (IdDeriver), so two different transactions
    never share an id and two identical ones stay two. The same entries always give the same
    ids."""
    contents: dict[str, set[str]] = {}
    for reference, content in entries:
        if reference:
            contents.setdefault(reference, set()).add(repr(content))
    derive = IdDeriver(account)
    return [scoped(account, reference) if reference and len(contents[reference]) == 1 else derive(content)
            for reference, content in entries]


def mt940_records(raw: IO[bytes], budget: Budget | None = None) -> Iterator[dict]:
    """The :61: lines of every statement in an MT940 file, in order, each with its own
    statement's account and currency; refused when there is none."""
    import logging

    import mt940

    # The library logs every failed match of every tag at ERROR: its verdict is the exception.
    logging.getLogger("mt940").setLevel(logging.CRITICAL)
    budget = budget or Budget()
    content = read_whole(raw, budget, "MT940")
    text = _decode(content)
    try:
        # ?31 of a structured :86: is the counterparty's account: kept apart from its name (?32, ?33).
        transactions = mt940.models.Transactions(options=mt940.options.Options(applicant_iban=True))
        # A new list: the library's processor lists are shared by every Transactions.
        transactions.processors["post_statement"] = [*transactions.processors["post_statement"], _with_statement]
        transactions.parse(text)
    except Exception as exc:
        raise InputError(f"the MT940 statement could not be parsed: {plain(exc)}") from None
    budget.check_time()
    if not len(transactions):
        raise InputError("the MT940 file holds no transactions (no :61: line after a :25: account)")
    return _mt940_rows(transactions)


def _mt940_text(data: dict) -> tuple[str, str]:
    """(counterparty, description) of a :61: line, from its :86: as written; where the library
    split a structured German :86: into fields (then the text as written is gone), from those:
    the name in ?32/?33, the purpose in ?20-?29 (SEPA's SVWZ+ part when it has one) else the
    posting text in ?00; likewise from a :NS: block where a bank writes one instead."""
    written = str(data.get("transaction_details") or "")
    if written:
        name = _NAME.search(written.replace("\n", ""))
        counterparty = next((g.strip() for g in (name.groups() if name else ()) if g and g.strip()), "")
        return counterparty, " ".join(written.split())
    purpose = " ".join(str(part) for part in (data.get("purpose"), data.get("additional_purpose")) if part)
    counterparty = str(data.get("applicant_name") or "")
    posting_text = str(data.get("posting_text") or "")
    if not (purpose or counterparty or posting_text):
        # A German bank's :NS: block after the :61: line instead of a :86: (01-14 purpose,
        # 15-16 the other party, 17 the posting text). Only those codes: the library also
        # hands a statement's own :NS: (22-34, the holder) to the previous statement's last line.
        purpose = " ".join(str(data.get(f"non_swift_{n:02d}") or "") for n in range(1, 15))
        counterparty = " ".join(str(data.get(f"non_swift_{n:02d}") or "") for n in (15, 16))
        posting_text = str(data.get("non_swift_17") or "")
    return " ".join(counterparty.split()), " ".join((purpose if purpose.strip() else posting_text).split())


def _with_statement(transactions, tag, tag_dict, result: dict) -> dict:
    """A :61: line's fields with its own statement's account (the :25: above it). The library
    keeps one statement-level dict for the whole file, which in a file of several statements
    ends up holding the last one's account."""
    account = transactions.data.get("account_identification")
    return {**result, "account_identification": account} if account and "account_identification" not in result \
        else result


def _four_digit_year(date: Any) -> Any:
    """An MT940 date (written YYMMDD) in its century. The library puts every year in the
    2000s; a statement line more than a year in the future is from the 1900s (statements of
    the Deutsche Mark era, 1998 read as 2098)."""
    import datetime as dt

    if isinstance(date, dt.date) and date.year > dt.date.today().year + 1:
        return date.replace(year=date.year - 100)
    return date


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


_NAME = re.compile(r"/NAME/([^/]+)/|\?32([^?]*)(?:\?33([^?]*))?")


def _mt940_rows(transactions) -> Iterator[dict]:
    """Records of the parsed lines; ids derived from each line as written, within its account
    (MT940 references are often NONREF or repeated, so they are never the id)."""
    derive: dict[str, IdDeriver] = {}
    for transaction in transactions:
        data = transaction.data
        account = str(data.get("account_identification") or transactions.data.get("account_identification") or "")
        amount = data.get("amount")
        counterparty, details = _mt940_text(data)
        reference = str(data.get("customer_reference") or "").strip()
        bank_reference = str(data.get("bank_reference") or "").strip()
        deriver = derive.setdefault(account, IdDeriver(account))
        written = [str(data.get(key) or "") for key in ("date", "entry_date", "amount", "id", "customer_reference",
                                                         "bank_reference", "extra_details", "transaction_details")]
        yield {
            "id": deriver(written),
            "date": str(_four_digit_year(data.get("date")) or ""),
            "value_date": str(_four_digit_year(data.get("date")) or ""),
            "amount": str(amount.amount) if amount is not None else "",
            "currency": str(getattr(amount, "currency", "") or data.get("currency") or ""),
            "account": account,
            "counterparty": counterparty,
            "description": details,
            "reference": real_reference(reference) or real_reference(bank_reference),
        }


def camt_records(raw: IO[bytes], budget: Budget | None = None) -> Iterator[dict]:
    from defusedxml import ElementTree as SafeTree

    budget = budget or Budget()
    content = read_whole(raw, budget, "CAMT")
    try:
        root = SafeTree.parse(io.BytesIO(content), forbid_dtd=True).getroot()
    except Exception as exc:
        raise InputError(f"the CAMT XML could not be parsed: {plain(exc)}") from None
    budget.check_time()
    statements = [element for element in root.iter() if _local(element.tag) in ("Stmt", "Rpt", "Ntfctn")]
    if not any(_local(child.tag) == "Ntry" for statement in statements for child in statement):
        raise InputError("the CAMT file holds no statement entries (Ntry)")
    return _camt_rows(statements)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _find(element, path: str):
    """The first descendant along `path` (local names joined by "/"), namespaces ignored."""
    current = [element]
    for step in path.split("/"):
        current = [child for node in current for child in node if _local(child.tag) == step]
        if not current:
            return None
    return current[0]


def _text(element, path: str) -> str:
    found = _find(element, path)
    return (found.text or "").strip() if found is not None else ""


def _camt_rows(statements) -> Iterator[dict]:
    """The records of every statement's entries, in order; ids by `statement_ids` over the
    statement's entries (its account servicer's reference, else the entry's, else the one in
    its transaction details, placeholders being no reference)."""
    for statement in statements:
        account = _text(statement, "Acct/Id/IBAN") or _text(statement, "Acct/Id/Othr/Id")
        account_currency = _text(statement, "Acct/Ccy")
        records = [_camt_entry(entry, account, account_currency)
                   for entry in statement if _local(entry.tag) == "Ntry"]
        ids = statement_ids(account, [(record.pop("_reference"), record.pop("_written")) for record in records])
        for identity, record in zip(ids, records, strict=True):
            yield {"id": identity, **record}


def _camt_entry(entry, account: str, account_currency: str) -> dict:
    """One entry's record without its id, with `_reference` (its real reference, or "") and
    `_written` (its values as the file wrote them, from which an id is derived)."""
    amount_element = _find(entry, "Amt")
    amount = (amount_element.text or "").strip() if amount_element is not None else ""
    currency = (amount_element.get("Ccy") if amount_element is not None else "") or account_currency
    if amount and _text(entry, "CdtDbtInd") == "DBIT" and not amount.startswith("-"):
        amount = f"-{amount}"
    # "2017-04-01+02:00": an ISO date with a zone offset, which some banks write
    booked = (_text(entry, "BookgDt/Dt") or _text(entry, "BookgDt/DtTm"))[:10]
    valued = (_text(entry, "ValDt/Dt") or _text(entry, "ValDt/DtTm"))[:10]
    details = _find(entry, "NtryDtls/TxDtls")
    party = "Cdtr" if _text(entry, "CdtDbtInd") == "DBIT" else "Dbtr"
    counterparty = ""
    remittance = ""
    end_to_end = ""
    if details is not None:
        counterparty = (_text(details, f"RltdPties/{party}/Nm") or _text(details, f"RltdPties/{party}/Pty/Nm")
                        or _text(details, f"RltdPties/Ultmt{party}/Nm"))
        remittance = " ".join(part.text.strip() for part in details.iter()
                              if _local(part.tag) == "Ustrd" and part.text and part.text.strip())
        end_to_end = _text(details, "Refs/EndToEndId")
    description = remittance or _text(entry, "AddtlNtryInf")
    if not description and details is not None:
        description = _text(details, "AddtlTxInf")
    written_reference = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef") or (
        _text(details, "Refs/AcctSvcrRef") if details is not None else "")
    reference = next((found for found in (real_reference(_text(entry, "AcctSvcrRef")),
                                          real_reference(_text(entry, "NtryRef")),
                                          real_reference(_text(details, "Refs/AcctSvcrRef"))
                                          if details is not None else "") if found), "")
    return {
        "_reference": reference,
        # as before placeholders were recognised, so ids derived then stay the same
        "_written": [booked, valued, amount, currency, written_reference, counterparty, description, end_to_end],
        "date": booked or valued,
        "value_date": valued,
        "amount": amount,
        "currency": currency,
        "account": account,
        "counterparty": counterparty,
        "description": " ".join(description.split()),
        "reference": real_reference(end_to_end) or reference,
    }


# OFX statements and the aggregate naming each one's account (OFX 2.2, 11.4, 11.5, 13.9).
_OFX_STATEMENTS = {"STMTRS": "BANKACCTFROM", "CCSTMTRS": "CCACCTFROM", "INVSTMTRS": "INVACCTFROM"}
# An investment statement's transactions that are not bank transactions (OFX 2.2, 13.9.2.4):
# they move securities, not the cash account, and are not read (each fails with its reason).
_INVESTMENT_TRANSACTIONS = frozenset({
    "BUYDEBT", "BUYMF", "BUYOPT", "BUYOTHER", "BUYSTOCK", "CLOSUREOPT", "INCOME", "INVEXPENSE", "JRNLFUND",
    "JRNLSEC", "MARGININTEREST", "REINVEST", "RETOFCAP", "SELLDEBT", "SELLMF", "SELLOPT", "SELLOTHER",
    "SELLSTOCK", "SPLIT", "TRANSFER"})


def ofx_records(raw: IO[bytes], budget: Budget | None = None) -> Iterator[dict]:
    """Transactions of every bank, card or investment statement in an OFX/QFX file (SGML v1
    or XML v2, with or without the OFX header), in the file's order.

    An investment statement's bank transactions (INVBANKTRAN) are read like a bank
    statement's, with the investment account (INVACCTFROM); its trades fail alone as
    `unsupported_transaction`. A file with neither is refused. From memory: ofxtools checks
    `"b" in source.mode`, which a gzip stream (whose mode is an int) fails, so the bytes are
    read here first."""
    budget = budget or Budget()
    content = read_whole(raw, budget, "OFX")
    budget.check_time()
    # Blank lines (or a byte-order mark) before the header are common in bank downloads and
    # mean nothing; ofxtools refuses them (issue 19).
    body, refused_header = _ofx_body(content.lstrip(b"\xef\xbb\xbf \t\r\n"))
    root = _ofx_tree(body)
    budget.check_time()
    statements = [element for element in root.iter() if element.tag in _OFX_STATEMENTS]
    if not any(element.tag == "STMTTRN" or element.tag in _INVESTMENT_TRANSACTIONS
               for statement in statements for element in statement.iter()):
        # Past a header ofxtools refused, its reason says more than "no transactions".
        raise InputError(f"the OFX file could not be parsed: {refused_header}" if refused_header else
                         "the OFX file holds no statement transactions (STMTTRN)")
    return _ofx_transactions(statements)


def _ofx_body(content: bytes) -> tuple[str, str]:
    """(The markup from <OFX> on, decoded as the header says; why ofxtools refused the
    header, or ""). A file that starts at <OFX>,
    without the header (American Express's downloads), or whose header ofxtools refuses
    (spaces after the colons, an XML declaration without its <?OFX ...?>), is read from its
    <OFX> tag, decoded as UTF-8, else as Windows-1252 (the header's usual CHARSET); a file
    with no <OFX> tag is refused with ofxtools' reason."""
    from ofxtools.header import parse_header

    if not content.startswith((b"OFXHEADER", b"<?xml", b"<?OFX")):
        return _decode(content), ""
    try:
        return parse_header(io.BytesIO(content))[1], ""
    except Exception as exc:
        start = content.find(b"<OFX>")
        if start < 0:
            raise InputError(f"the OFX file could not be parsed: {plain(exc)}") from None
        return _decode(content[start:]), plain(exc)


def _ofx_tree(body: str):
    """The element tree of the OFX markup as ofxtools builds it; when ofxtools refuses the
    nesting, as `_loose_ofx_tree` builds it. A file ofxtools reads is read exactly as before."""
    from ofxtools.Parser import TreeBuilder

    try:
        builder = TreeBuilder()
        builder.feed(body)
        return builder.close()
    except Exception as strict:
        try:
            return _loose_ofx_tree(body)
        except Exception:
            raise InputError(f"the OFX file could not be parsed: {plain(strict)}") from None


def _loose_ofx_tree(body: str):
    """The tree from ofxtools' tokens with SGML's forgiving nesting: a tag followed by text is
    a value (closed at once, as ofxtools does); a tag followed by another tag opens an
    aggregate; an end tag closes its aggregate and any left open inside it; an end tag naming
    no open aggregate (the end of a value, which OFX 1 does not need and some exports put
    after later values) is ignored; aggregates still open at the end are closed. A
    transaction thus stays inside the statement that encloses it, which is all the reading
    relies on."""
    from xml.etree.ElementTree import TreeBuilder as ElementBuilder

    from ofxtools.Parser import TreeBuilder

    builder, opened = ElementBuilder(), []
    for match in TreeBuilder.regex.finditer(body):
        tag, text = match["tag"], match["cdata"] or (match["text"] or "").strip()
        if tag.startswith("/"):
            while tag[1:] in opened:
                builder.end(last := opened.pop())
                if last == tag[1:]:
                    break
            continue
        builder.start(tag, {})
        if text or match["closetag"]:
            if text:
                builder.data(text)
            builder.end(tag)
        else:
            opened.append(tag)
    while opened:
        builder.end(opened.pop())
    return builder.close()


def _ofx_transactions(statements: list) -> Iterator[dict]:
    """Records of the statements' transactions. A FITID is unique within its account only, so
    the id is "<account>/<FITID>" (issue 19; `statement_ids`); a statement whose first
    transaction carries a FITID carries ids, so one without is refused alone; a statement
    without any gets ids derived from each transaction's own text within its account."""
    for statement in statements:
        currency = (statement.findtext("CURDEF") or "").strip()
        account = (statement.findtext(f"{_OFX_STATEMENTS[statement.tag]}/ACCTID") or "").strip()
        entries = list(statement.iter("STMTTRN"))
        written = [{child.tag: (child.text or "").strip() for child in entry} for entry in entries]
        carries = bool(written) and bool(written[0].get("FITID"))
        ids = statement_ids(account, [(fields.get("FITID", ""), sorted(fields.items())) for fields in written])
        for entry, fields, identity in zip(entries, written, ids, strict=True):
            extra = {}
            if carries and not fields.get("FITID"):
                identity = ""
                extra = {"_import_error": {"code": "missing_id", "field": "id", "message": (
                    "this transaction has no FITID while the statement's others have one")}}
            posted = fields.get("DTPOSTED", "")[:8]
            yield {
                **extra,
                "id": identity,
                "date": f"{posted[:4]}-{posted[4:6]}-{posted[6:8]}" if len(posted) == 8 else posted,
                "amount": fields.get("TRNAMT", ""),
                "currency": (entry.findtext("CURRENCY/CURSYM") or currency).strip(),
                "account": account,
                "counterparty": fields.get("NAME") or entry.findtext("PAYEE/NAME") or "",
                "description": fields.get("MEMO", ""),
                "reference": fields.get("CHECKNUM") or fields.get("REFNUM") or "",
            }
        if statement.tag == "INVSTMTRS":
            yield from _unsupported_investments(statement, account)


def _unsupported_investments(statement, account: str) -> Iterator[dict]:
    """A record failing as `unsupported_transaction` for each trade of an investment
    statement (what is not read is said, never dropped silently), with its FITID as id."""
    listing = statement.find("INVTRANLIST")
    for trade in (child for child in (listing if listing is not None else []) if child.tag in _INVESTMENT_TRANSACTIONS):
        fitid = (trade.findtext(".//INVTRAN/FITID") or "").strip()
        traded = (trade.findtext(".//INVTRAN/DTTRADE") or "")[:8]
        yield {
            "_import_error": {"code": "unsupported_transaction", "message": (
                f"an investment transaction ({trade.tag}) moves securities, not the account's cash; only the "
                "statement's bank transactions (INVBANKTRAN) are read")},
            "id": scoped(account, fitid) if fitid else "",
            "date": f"{traded[:4]}-{traded[4:6]}-{traded[6:8]}" if len(traded) == 8 else traded,
            "account": account,
            "description": (trade.findtext(".//INVTRAN/MEMO") or "").strip(),
        }
