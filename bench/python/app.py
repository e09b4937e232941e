"""The original's FastAPI counter app, plus a no-op route for comparison.

Run with: uvicorn app:app --port 8000 --loop uvloop --log-level warning"""

from contextlib import asynccontextmanager
from typing import Annotated

from etiquette import Decorum, Etiquette
from fastapi import Depends, FastAPI


class Counter:
    value = 0


@asynccontextmanager
async def lifespan(app):
    Etiquette.initiate(max_concurrent_tasks=16)
    yield
    await Etiquette.release()


app = FastAPI(lifespan=lifespan)


@app.get("/noop")
async def noop() -> str:
    return "OK"


@app.get("/add-task")
async def add_task(decorum: Annotated[Decorum, Depends(Decorum)]) -> str:
    async def increment() -> None:
        Counter.value += 1

    await decorum.add_task(increment)
    return "OK"
