package ais

import (
	"fmt"
	"strings"
)

// taskFormat is what one task type's files hold, in words.
type taskFormat struct {
	name, data, label, modelIn, modelOut, example string
}

// formats describe every task type's data, label and model zips.
var formats = map[string]taskFormat{
	TaskIC: {name: "image classification",
		data: "Image files (.png, .jpg or .jpeg), all of one size, in any folders; base names unique. Grayscale images give C = 1, " +
			"colour C = 3 (alpha is ignored). Or instead one NumPy .npy array (C order; float32, float64 or uint8) of shape [N, H, W], " +
			"[N, C, H, W] or [N, F]: uint8 values are divided by 255, float values are used as they are (keep them in [0, 1]).",
		label: "One CSV with a header naming a `label` column and, for images, a `file` (or `image`, `filename`) column holding each " +
			"image's file name (its base name). Without a file column the rows label the images sorted by path, or the .npy rows in order. " +
			"Labels that are all integers ≥ 0 are class indices (classes 0 … max); any other labels are names, indexed in sorted order.",
		modelIn: "float32 tensor [N, C, H, W], pixel values in [0, 1] (or [N, F] for a 2-D .npy)", modelOut: "logits [N, classes]",
		example: "100 scikit-learn digits as 8×8 grayscale PNGs (`images/digit_000.png` …) and `labels.csv` (`file,label`)."},
	TaskIS: {name: "image segmentation",
		data: "Image files (.png, .jpg or .jpeg), all of one size; base names unique.",
		label: "One mask PNG per image, named like its image (same name before the extension; `a.jpg` → `a.png`), of the image's size. " +
			"Each pixel's value is its class index: a palette PNG's palette index, or a grayscale PNG's gray level (0 is a class like any other).",
		modelIn: "float32 tensor [N, C, H, W] in [0, 1]", modelOut: "logits [N, K, H, W] (K classes, at least one more than the largest mask value)",
		example: "20 scenes of 24×24 with one digit drawn twice its size (`images/scene_000.png` …) and their masks (`masks/scene_000.png` …: 0 background, digit + 1 on the digit's ink)."},
	TaskOD: {name: "object detection",
		data: "Image files (.png, .jpg or .jpeg), all of one size; base names unique.",
		label: "One CSV whose header is exactly `image,x_min,y_min,x_max,y_max,label`, one row per object: the image's file name, " +
			"its box corners in pixels (0 ≤ x_min < x_max ≤ width, 0 ≤ y_min < y_max ≤ height) and its class (integer indices, or names indexed in sorted order). " +
			"Every image needs at least one row: the upload check counts the images the CSV names against the data's images.",
		modelIn: "float32 tensor [N, C, H, W] in [0, 1]",
		modelOut: "float32 tensor [N, D, 6]: D detections per image, each row (x_min, y_min, x_max, y_max, score, class) in pixels, " +
			"padded with rows of score 0",
		example: "20 scenes of 40×40, each with two digits drawn twice their size, and `boxes.csv` with the digits' boxes."},
	TaskTC: {name: "tabular classification",
		data:    "One CSV: a header naming the features, then one row per sample, every cell a number.",
		label:   "One CSV with a `label` column, one row per data row in the same order (integers ≥ 0 are class indices; names are indexed in sorted order).",
		modelIn: "float32 tensor [N, F] (F features, in the CSV's column order)", modelOut: "logits [N, classes]",
		example: "Fisher's iris: `table.csv` (4 features) and `labels.csv` (setosa, versicolor, virginica)."},
	TaskTS: {name: "time-series classification",
		data:    "One CSV: a header, then one window per row (W numbers, oldest first).",
		label:   "One CSV with a `label` column, one row per window in the same order (integers ≥ 0 are class indices; names are indexed in sorted order).",
		modelIn: "float32 tensor [N, W]", modelOut: "logits [N, classes]",
		example: "61 years of monthly sea-surface temperatures (12-month windows) labelled warm or cool (the year's mean above the median year's, or not)."},
	TaskTSF: {name: "time-series forecasting",
		data: "One CSV: a header, then one window per row: first an id or timestamp (any text, kept as the sample's name), " +
			"then the W input values, oldest first.",
		label:   "One CSV: a header, then for each window (same order) the H values that follow it, every cell a number.",
		modelIn: "float32 tensor [N, W]", modelOut: "float32 tensor [N, H]",
		example: "60 windows of 12 weekly Mauna Loa CO2 readings (ppm) with the 4 readings after each."},
	TaskNLP: {name: "text classification",
		data:    "One UTF-8 .txt file, one sample per non-empty line (lines up to 1 MiB), or one CSV with a `text` column.",
		label:   "One CSV with a `label` column, one row per sample in the same order (integers ≥ 0 are class indices; names are indexed in sorted order).",
		modelIn: "List[str], the texts", modelOut: "logits [N, classes]",
		example: "50 WordNet noun glosses (`texts.txt`) labelled noun.animal or noun.food."},
}

// formatText is a task type's FORMAT.md.
func formatText(task string) string {
	f := formats[task]
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (%s): what to upload\n\n", task, f.name)
	b.WriteString("A registration takes three zip files: model, data and label. Folders inside a zip are allowed; " +
		"macOS clutter (`__MACOSX/`, `.DS_Store`) is ignored; links, absolute paths and `..` are refused.\n\n")
	b.WriteString("## model.zip\n\nExactly one TorchScript file, `*.pt`, written by `torch.jit.save` " +
		"(script or trace the model, then save it; a state_dict or a pickled module is not accepted).\n\n")
	fmt.Fprintf(&b, "- input: %s\n- output: %s\n\n", f.modelIn, f.modelOut)
	fmt.Fprintf(&b, "## data.zip\n\n%s\n\n## label.zip\n\n%s\n\n", f.data, f.label)
	fmt.Fprintf(&b, "The data and label zips must hold the same number of samples.\n\n## Examples\n\n%s "+
		"Download them from `/api/ais/v1.5/examples/%s/data.zip` and `/api/ais/v1.5/examples/%s/label.zip`.\n", f.example, task, task)
	return b.String()
}
