"""Acumatica-style API errors raised by the sandbox data layer (api.md §9)."""

from __future__ import annotations

from typing import Any

# api.md §9: every contract-based failure is an ASP.NET Web API ``HttpError`` JSON body with
# "message", "exceptionMessage", "exceptionType" and a .NET "stackTrace" (with \r\n separators).
_STACK = {
    "odata": (
        "   at Microsoft.Data.OData.Query.UriQueryExpressionParser.ParseExpression(String t)\r\n"
        "   at PX.Api.ContractBased.OData.ODataQueryParser.Parse(String filter)\r\n"
        "   at PX.Api.ContractBased.WebApi.EntityController.GetList(String entityName)"
    ),
    "api": (
        "   at PX.Api.ContractBased.EntityService.GetList(ISystemContract c, EntityImpl e)\r\n"
        "   at PX.Api.ContractBased.WebApi.EntityController.GetList(String entityName)"
    ),
    "get": (
        "   at PX.Api.ContractBased.EntityService.Get(ISystemContract c, EntityImpl e)\r\n"
        "   at PX.Api.ContractBased.WebApi.EntityController.GetByKeys(String name, String ids)"
    ),
}

ODATA_EXCEPTION = "Microsoft.Data.OData.ODataException"
NOT_FOUND_EXCEPTION = "PX.Api.ContractBased.NoEntitySatisfiesTheConditionException"
NOT_SUPPORTED_EXCEPTION = "System.NotSupportedException"
PX_EXCEPTION = "PX.Data.PXException"


class ApiError(Exception):
    """An error the sandbox answers with ``status`` and Acumatica's JSON ``body``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("exceptionMessage") or body.get("message"))
        self.status = status
        self.body = body


def api_error(
    exception_message: str,
    exception_type: str = PX_EXCEPTION,
    *,
    status: int = 500,
    stack: str = "api",
) -> ApiError:
    """Build an :class:`ApiError` with the §9 body shape."""
    return ApiError(
        status,
        {
            "message": "An error has occurred.",
            "exceptionMessage": exception_message,
            "exceptionType": exception_type,
            "stackTrace": _STACK.get(stack, _STACK["api"]),
        },
    )


def odata_error(exception_message: str) -> ApiError:
    """A query-option error (bad $filter/$select/$expand/$custom/$top/$skip, $orderby)."""
    return api_error(exception_message, ODATA_EXCEPTION, stack="odata")


def not_found() -> ApiError:
    """GET by keys/id of a missing record: 500, observed in the field (api.md §9)."""
    return api_error("No entity satisfies the condition.", NOT_FOUND_EXCEPTION, stack="get")


def unknown_entity(entity: str) -> ApiError:
    """An entity name that the endpoint does not define."""
    return ApiError(
        404,
        {
            "message": f"No HTTP resource was found that matches the request URI for entity "
            f"'{entity}'.",
            "messageDetail": f"No type was found that matches the entity named '{entity}'.",
        },
    )
