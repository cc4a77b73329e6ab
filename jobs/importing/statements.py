"""Bank statements in the formats banks send to accounting software: OFX/QFX (in
jobs.importing.sources), SWIFT MT940 and ISO 20022 CAMT.053 (here).

Each is parsed whole, like an OFX statement: read first within ZENITH_MAX_OFX_BYTES (the
limit of every statement format; statements are small), with no value longer than a line may
be, and within the request's deadline (jobs.importing.limits). MT940 is read by the `mt-940`
library (pinned in requirements.txt); CAMT.053 by the standard library's ElementTree through
`defusedxml`, which refuses entity expansion and external references in the untrusted XML.

Every record carries the statement's account, and its id is scoped by that account: a
statement's transaction references are unique within its account only (issue 19). A
transaction without a reference gets an id derived from its own text within the account
(jobs.importing.identity.IdDeriver).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import IO

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


def mt940_records(raw: IO[bytes], budget: Budget | None = None) -> Iterator[dict]:
    import logging

    import mt940

    # The library logs every failed match of every tag at ERROR: its verdict is the exception.
    logging.getLogger("mt940").setLevel(logging.CRITICAL)
    budget = budget or Budget()
    content = read_whole(raw, budget, "MT940")
    text = _decode(content)
    try:
        transactions = mt940.models.Transactions()
        transactions.parse(text)
    except Exception as exc:
        raise InputError(f"the MT940 statement could not be parsed: {plain(exc)}") from None
    budget.check_time()
    if not len(transactions):
        raise InputError("the MT940 file holds no transactions (no :61: line after a :25: account)")
    return _mt940_rows(transactions)


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


_NAME = re.compile(r"/NAME/([^/]+)/|\?32([^?]*)(?:\?33([^?]*))?")


def _mt940_rows(transactions) -> Iterator[dict]:
    derive: dict[str, IdDeriver] = {}
    for transaction in transactions:
        data = transaction.data
        account = str(data.get("account_identification") or transactions.data.get("account_identification") or "")
        amount = data.get("amount")
        details = " ".join(str(data.get("transaction_details") or "").split())
        name = _NAME.search(str(data.get("transaction_details") or "").replace("\n", ""))
        counterparty = next((g.strip() for g in (name.groups() if name else ()) if g and g.strip()), "")
        reference = str(data.get("customer_reference") or "").strip()
        bank_reference = str(data.get("bank_reference") or "").strip()
        deriver = derive.setdefault(account, IdDeriver(account))
        written = [str(data.get(key) or "") for key in ("date", "entry_date", "amount", "id", "customer_reference",
                                                         "bank_reference", "extra_details", "transaction_details")]
        yield {
            "id": deriver(written),
            "date": str(data.get("date") or ""),
            "value_date": str(data.get("date") or ""),
            "amount": str(amount.amount) if amount is not None else "",
            "currency": str(getattr(amount, "currency", "") or data.get("currency") or ""),
            "account": account,
            "counterparty": counterparty,
            "description": details,
            "reference": reference if reference.upper() != "NONREF" else bank_reference,
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
    for statement in statements:
        account = _text(statement, "Acct/Id/IBAN") or _text(statement, "Acct/Id/Othr/Id")
        account_currency = _text(statement, "Acct/Ccy")
        deriver = IdDeriver(account)
        for entry in (child for child in statement if _local(child.tag) == "Ntry"):
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
            reference = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef") or (
                _text(details, "Refs/AcctSvcrRef") if details is not None else "")
            written = [booked, valued, amount, currency, reference, counterparty, description, end_to_end]
            yield {
                "id": scoped(account, reference) if reference else deriver(written),
                "date": booked or valued,
                "value_date": valued,
                "amount": amount,
                "currency": currency,
                "account": account,
                "counterparty": counterparty,
                "description": " ".join(description.split()),
                "reference": end_to_end if end_to_end and end_to_end.upper() != "NOTPROVIDED" else reference,
            }
