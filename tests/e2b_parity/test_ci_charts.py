"""Upstream: github.com/e2b-dev/code-interpreter @ 7df1757bfd5baa037f909ce97c2dbe014da973c0
python/tests/charts/test_bar.py, test_box_and_whiskers.py, test_json.py, test_line.py,
test_log_chart.py, test_pie.py, test_scale.py, test_scatter.py, test_superchart.py,
test_unknown.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.
The ten files are joined into one module so they share one sandbox (and one
matplotlib import): each module-level `code` is renamed `code_<file>`, and
test_json.py's `test_scatter_chart` is `test_json_scatter_chart` here (the name
clashes with test_scatter.py's). The `chart` field is what E2B's template adds with
e2b-charts (`e2b/chart` mime type).
"""

import datetime
import json

import pytest
from e2b_code_interpreter.charts import (
    BarChart,
    BoxAndWhiskerChart,
    Chart,
    ChartType,
    LineChart,
    PieChart,
    ScatterChart,
    SuperChart,
)
from e2b_code_interpreter.code_interpreter_async import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


# --- python/tests/charts/test_bar.py -----------------------------------------------

code_bar = """
import matplotlib.pyplot as plt

# Prepare data
authors = ['Author A', 'Author B', 'Author C', 'Author D']
sales = [100, 200, 300, 400]

# Create and customize the bar chart
plt.figure(figsize=(10, 6))
plt.bar(authors, sales, label='Books Sold', color='blue')
plt.xlabel('Authors')
plt.ylabel('Number of Books Sold')
plt.title('Book Sales by Authors')

# Display the chart
plt.tight_layout()
plt.show()
"""


async def test_chart_bar(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(code_bar)

    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, BarChart)
    assert chart.type == ChartType.BAR
    assert chart.title == "Book Sales by Authors"

    assert chart.x_label == "Authors"
    assert chart.y_label == "Number of Books Sold"

    assert chart.x_unit is None
    assert chart.y_unit is None

    bars = chart.elements
    assert len(bars) == 4

    assert [bar.value for bar in bars] == [100, 200, 300, 400]
    assert [bar.label for bar in bars] == [
        "Author A",
        "Author B",
        "Author C",
        "Author D",
    ]
    assert [bar.group for bar in bars] == ["Books Sold"] * 4


# --- python/tests/charts/test_box_and_whiskers.py ----------------------------------

code_box_and_whiskers = """
import matplotlib.pyplot as plt
import numpy as np

# Sample data
data = {
    'Class A': [85, 90, 78, 92, 88],
    'Class B': [95, 89, 76, 91, 84, 87],
    'Class C': [75, 82, 88, 79, 86]
}

# Create figure and axis
fig, ax = plt.subplots(figsize=(10, 6))

# Customize plot
ax.set_title('Exam Scores Distribution')
ax.set_xlabel('Class')
ax.set_ylabel('Score')

# Set custom colors
ax.boxplot(data.values(), labels=data.keys(), patch_artist=True)

# Add legend
ax.legend()

# Adjust layout and show plot
plt.tight_layout()
plt.show()
"""


async def test_box_and_whiskers(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(code_box_and_whiskers)

    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, BoxAndWhiskerChart)
    assert chart.type == ChartType.BOX_AND_WHISKER
    assert chart.title == "Exam Scores Distribution"

    assert chart.x_label == "Class"
    assert chart.y_label == "Score"

    assert chart.x_unit is None
    assert chart.y_unit is None

    bars = chart.elements
    assert len(bars) == 3

    assert [bar.outliers for bar in bars] == [[], [76], []]
    assert [bar.min for bar in bars] == [78, 84, 75]
    assert [bar.first_quartile for bar in bars] == [85, 84.75, 79]
    assert [bar.median for bar in bars] == [88, 88, 82]
    assert [bar.third_quartile for bar in bars] == [90, 90.5, 86]
    assert [bar.max for bar in bars] == [92, 95, 88]
    assert [bar.label for bar in bars] == ["Class A", "Class B", "Class C"]


# --- python/tests/charts/test_json.py ----------------------------------------------

code_json = """
import matplotlib.pyplot as plt
import numpy as np

# Create data
N = 5
x = np.random.rand(N)
y = np.random.rand(N)

plt.xlabel("A")

plt.scatter(x, y, c='blue', label='Dataset')

plt.show()
"""


async def test_json_scatter_chart(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(code_json)
    serialized = result.to_json()
    assert isinstance(serialized, str)

    assert json.loads(serialized)["results"][0]["chart"]["type"] == "scatter"


# --- python/tests/charts/test_line.py ----------------------------------------------

code_line = """
import numpy as np
import matplotlib.pyplot as plt
import datetime

# Generate x values
dates = [datetime.date(2023, 9, 1) + datetime.timedelta(seconds=i) for i in range(100)]

x = np.linspace(0, 2*np.pi, 100)
# Calculate y values
y_sin = np.sin(x)
y_cos = np.cos(x)

# Create the plot
plt.figure(figsize=(10, 6))
plt.plot(dates, y_sin, label='sin(x)')
plt.plot(dates, y_cos, label='cos(x)')

# Add labels and title
plt.xlabel("Time (s)")
plt.ylabel("Amplitude (Hz)")
plt.title('Plot of sin(x) and cos(x)')

# Display the plot
plt.show()
"""


async def test_line_chart(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(code_line)

    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, LineChart)
    assert chart.title == "Plot of sin(x) and cos(x)"

    assert chart.x_label == "Time (s)"
    assert chart.y_label == "Amplitude (Hz)"

    assert chart.x_unit == "s"
    assert chart.y_unit == "Hz"

    assert chart.x_scale == "datetime"
    assert chart.y_scale == "linear"

    assert all(isinstance(x, str) for x in chart.x_ticks)
    parsed_date = datetime.datetime.fromisoformat(chart.x_ticks[0])
    assert isinstance(parsed_date, datetime.datetime)
    assert all(isinstance(y, float) for y in chart.y_ticks)

    assert all(isinstance(x, str) for x in chart.y_tick_labels)
    assert all(isinstance(y, str) for y in chart.y_tick_labels)

    lines = chart.elements
    assert len(lines) == 2

    first_line = lines[0]
    assert first_line.label == "sin(x)"
    assert len(first_line.points) == 100
    assert all(isinstance(point, tuple) for point in first_line.points)
    assert all(isinstance(x, str) and isinstance(y, float) for x, y in first_line.points)

    parsed_date = datetime.datetime.fromisoformat(first_line.points[0][0])
    assert isinstance(parsed_date, datetime.datetime)

    second_line = lines[1]
    assert second_line.label == "cos(x)"
    assert len(second_line.points) == 100


# --- python/tests/charts/test_log_chart.py -----------------------------------------

# Log chart
code_log_chart = """
import numpy as np
import matplotlib.pyplot as plt

# Generate x values
x = np.linspace(0, 100, 100)
# Calculate y values
y = np.exp(x)

# Create the plot
plt.figure(figsize=(10, 6))
plt.plot(x, y, label='y = e^x')

# Set log scale for the y-axis
plt.yscale('log')

# Add labels and title
plt.xlabel('X-axis')
plt.ylabel('Y-axis (log scale)')
plt.title('Chart with Log Scale on Y-axis')

plt.legend()
plt.grid(True)
plt.show()
"""


async def test_log_chart(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(code_log_chart)

    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, LineChart)
    assert chart.title == "Chart with Log Scale on Y-axis"

    assert chart.x_label == "X-axis"
    assert chart.y_label == "Y-axis (log scale)"

    assert chart.x_unit is None
    assert chart.y_unit == "log scale"

    assert chart.x_scale == "linear"
    assert chart.y_scale == "log"

    assert all(isinstance(x, float) for x in chart.x_ticks)
    assert all(isinstance(y, float) for y in chart.y_ticks)

    assert all(isinstance(x, str) for x in chart.x_tick_labels)
    assert all(isinstance(y, str) for y in chart.y_tick_labels)

    lines = chart.elements
    assert len(lines) == 1

    line = lines[0]
    assert line.label == "y = e^x"
    assert len(line.points) == 100

    assert all(isinstance(x, tuple) for x in line.points)
    assert all(isinstance(x, float) and isinstance(y, float) for x, y in line.points)


# --- python/tests/charts/test_pie.py -----------------------------------------------

code_pie = """
import matplotlib.pyplot as plt
import numpy as np

# Step 1: Define the data for the pie chart
categories = ["No", "No, in blue"]
sizes = [90, 10]

# Step 2: Create the figure and axis objects
fig, ax = plt.subplots(figsize=(8, 8))

plt.xlabel("x")
plt.ylabel("y")

# Step 3: Create the pie chart
ax.pie(sizes, labels=categories, autopct='%1.1f%%', startangle=90, colors=plt.cm.Pastel1.colors[:len(categories)])

# Step 4: Add title and legend
ax.axis('equal')  # Equal aspect ratio ensures that pie is drawn as a circle
plt.title('Will I wake up early tomorrow?')

# Step 5: Show the plot
plt.show()
"""


async def test_pie_chart(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(code_pie)

    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, PieChart)

    assert chart.title == "Will I wake up early tomorrow?"

    assert len(chart.elements) == 2

    first_data = chart.elements[0]
    assert first_data.label == "No"
    assert first_data.angle == 324
    assert first_data.radius == 1

    second_data = chart.elements[1]
    assert second_data.label == "No, in blue"
    assert second_data.angle == 36
    assert second_data.radius == 1


# --- python/tests/charts/test_scale.py ---------------------------------------------


async def test_datetime_scale(async_sandbox: AsyncSandbox):
    code = """
    import numpy as np
    import matplotlib.pyplot as plt
    import datetime

    # Generate x values
    dates = [datetime.date(2023, 9, 1) + datetime.timedelta(seconds=i) for i in range(100)]
    y_sin = np.sin(np.linspace(0, 2*np.pi, 100))

    # Create the plot
    plt.figure(figsize=(10, 6))
    plt.plot(dates, y_sin, label='sin(x)')
    plt.show()
    """

    result = await async_sandbox.run_code(code)

    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, LineChart)
    assert chart.x_scale == "datetime"
    assert chart.y_scale == "linear"


async def test_categorical_scale(async_sandbox: AsyncSandbox):
    code = """
    import numpy as np
    import matplotlib.pyplot as plt

    x = [1, 2, 3, 4, 5]
    y = ['A', 'B', 'C', 'D', 'E']

    # Create the plot
    plt.figure(figsize=(10, 6))
    plt.plot(x, y)
    plt.show()
    """

    result = await async_sandbox.run_code(code)

    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, LineChart)
    assert chart.x_scale == "linear"
    assert chart.y_scale == "categorical"


# --- python/tests/charts/test_scatter.py -------------------------------------------

code_scatter = """
import matplotlib.pyplot as plt
import numpy as np

# Create data
N = 5
x1 = np.random.rand(N)
y1 = np.random.rand(N)
x2 = np.random.rand(2*N)
y2 = np.random.rand(2*N)

plt.xlabel("A")
plt.ylabel("B")

plt.scatter(x1, y1, c='blue', label='Dataset 1')
plt.scatter(x2, y2, c='red', label='Dataset 2')

plt.show()
"""


async def test_scatter_chart(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(code_scatter)

    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, ScatterChart)

    assert chart.title is None
    assert chart.x_label == "A"
    assert chart.y_label == "B"

    assert chart.x_scale == "linear"
    assert chart.y_scale == "linear"

    assert all(isinstance(x, float) for x in chart.x_ticks)
    assert all(isinstance(y, float) for y in chart.y_ticks)

    assert all(isinstance(x, str) for x in chart.y_tick_labels)
    assert all(isinstance(y, str) for y in chart.y_tick_labels)

    assert len(chart.elements) == 2

    first_data = chart.elements[0]
    assert first_data.label == "Dataset 1"
    assert len(first_data.points) == 5
    print(first_data.points)
    assert all(isinstance(x, tuple) for x in first_data.points)

    second_data = chart.elements[1]
    assert second_data.label == "Dataset 2"
    assert len(second_data.points) == 10
    assert all(isinstance(x, tuple) for x in second_data.points)


# --- python/tests/charts/test_superchart.py ----------------------------------------

code_superchart = """
import matplotlib.pyplot as plt
import numpy as np

# Data for plotting
x1 = np.linspace(0, 10, 100)
y1 = np.sin(x1)

# Create a figure with multiple subplots
fig, axs = plt.subplots(1, 2, figsize=(10, 8))
fig.suptitle('Multiple Charts Example', fontsize=16)

# Plotting on the different axes
axs[0].plot(x1, y1, 'r')
axs[0].set_title('Sine Wave')
axs[0].grid(True)

N = 5
x2 = np.random.rand(N)
y2 = np.random.rand(N)

axs[1].scatter(x2, y2, c='blue', label='Dataset 1')
axs[1].set_xlabel('X')
axs[1].set_ylabel('Y')
axs[1].set_title('Scatter Plot')
axs[1].grid(True)

plt.show()
"""


async def test_super_chart(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(code_superchart)
    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, SuperChart)
    assert chart.type == ChartType.SUPERCHART
    assert chart.title == "Multiple Charts Example"

    charts = chart.elements
    assert len(charts) == 2

    first_chart = charts[0]
    assert first_chart.title == "Sine Wave"
    assert isinstance(first_chart, LineChart)
    assert first_chart.x_label is None
    assert first_chart.y_label is None
    assert len(first_chart.elements) == 1
    assert len(first_chart.elements[0].points) == 100

    second_chart = charts[1]
    assert second_chart.title == "Scatter Plot"
    assert isinstance(second_chart, ScatterChart)
    assert second_chart.x_label == "X"
    assert second_chart.y_label == "Y"
    assert len(second_chart.elements) == 1
    assert len(second_chart.elements[0].points) == 5


# --- python/tests/charts/test_unknown.py -------------------------------------------

code_unknown = """
import matplotlib.pyplot as plt
import numpy as np

# Create a figure and an axis
fig, ax = plt.subplots()

# Create data for two concentric circles
circle1 = plt.Circle((0, 0), 1, color='blue', fill=False, linewidth=2)
circle2 = plt.Circle((0, 0), 2, color='red', fill=False, linewidth=2)

# Add the circles to the axes
ax.add_artist(circle1)
ax.add_artist(circle2)

# Set grid
ax.grid(True)

# Set title
plt.title('Two Concentric Circles')

# Show the plot
plt.show()
"""


async def test_unknown_charts(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(code_unknown)

    chart = result.results[0].chart
    assert chart

    assert isinstance(chart, Chart)
    assert chart.type == ChartType.UNKNOWN
    assert chart.title == "Two Concentric Circles"

    assert len(chart.elements) == 0
