"""Upstream: github.com/e2b-dev/code-interpreter @ 7df1757bfd5baa037f909ce97c2dbe014da973c0
python/tests/images/test_images.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.

Added (NOT an upstream test): test_get_image_on_savefig. E2B's template
(template/startup_scripts/0003_images.py, same commit) wraps `PIL.Image.Image.save`
so that saving to a path also `display()`s the image; matplotlib's `savefig` to a
PNG/JPEG path goes through `PIL.Image.save` (matplotlib.image.imsave), so on E2B
`plt.savefig("x.png")` yields a PNG result even after `plt.close()`. The test encodes
that, in the style of test_get_image_on_save.
"""

import pytest
from e2b_code_interpreter.code_interpreter_async import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_show_image(async_sandbox: AsyncSandbox):
    code = """
    import numpy
    from PIL import Image

    imarray = numpy.random.rand(16,16,3) * 255
    image = Image.fromarray(imarray.astype('uint8')).convert('RGBA')

    image.show()
    print("Image shown.")
    """

    execution = await async_sandbox.run_code(code)

    image = execution.results[0].png
    assert image


async def test_image_as_last_command(async_sandbox: AsyncSandbox):
    code = """
    import numpy
    from PIL import Image

    imarray = numpy.random.rand(16,16,3) * 255
    image = Image.fromarray(imarray.astype('uint8')).convert('RGBA')

    image
    """
    execution = await async_sandbox.run_code(code)

    image = execution.results[0].png
    assert image


async def test_get_image_on_save(async_sandbox: AsyncSandbox):
    code = """
    import numpy
    from PIL import Image

    imarray = numpy.random.rand(16,16,3) * 255
    image = Image.fromarray(imarray.astype('uint8')).convert('RGBA')

    image.save("test.png")
    print("Image saved.")
    """

    execution = await async_sandbox.run_code(code)

    image = execution.results[0].png
    assert image


async def test_get_image_on_savefig(async_sandbox: AsyncSandbox):
    code = """
    import matplotlib.pyplot as plt

    plt.plot([1, 2, 3], [4, 1, 3])
    plt.savefig("test_savefig.png")
    plt.close()
    print("Image saved.")
    """

    execution = await async_sandbox.run_code(code)

    image = execution.results[0].png
    assert image
    assert await async_sandbox.files.exists("test_savefig.png")
