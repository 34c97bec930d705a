using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Data;
using TransferSharp.Runtime;
using TransferSharp.Training;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer lr-find`: the learning-rate range test (fastai's lr_find), its curve as a PNG and the suggested rate.</summary>
public sealed class LrFindCommand : Command<LrFindCommand.Settings>
{
    public sealed class Settings : WeightsSettings
    {
        [CommandOption("--mode <MODE>")]
        [Description("head: the head on cached features (the rate of `train --head-solver epochs`). finetune: on augmented images (see --stage).")]
        [DefaultValue("head")]
        public string Mode { get; init; } = "head";

        [CommandOption("--stage <N>")]
        [Description("finetune: 1 tests the head on the frozen body, 2 the unfrozen top groups (body at --body-lr-factor × the rate).")]
        [DefaultValue(1)]
        public int Stage { get; init; } = 1;

        [CommandOption("--start-lr <RATE>")]
        [DefaultValue(1e-7)]
        [Description("Rate of the first mini-batch.")]
        public double StartLr { get; init; } = 1e-7;

        [CommandOption("--end-lr <RATE>")]
        [DefaultValue(10.0)]
        [Description("Rate of the last mini-batch (the ramp is exponential).")]
        public double EndLr { get; init; } = 10;

        [CommandOption("--steps <N>")]
        [DefaultValue(100)]
        [Description("Mini-batches of the ramp; it stops early when the smoothed loss exceeds 4× its minimum.")]
        public int Steps { get; init; } = 100;

        [CommandOption("-b|--batch-size <N>")]
        [Description("Samples per step. Default 32 (finetune) / 64 (head).")]
        public int? BatchSize { get; init; }

        [CommandOption("--optimizer <NAME>")]
        [Description("adamw or sgd (momentum 0.9).")]
        [DefaultValue("adamw")]
        public string Optimizer { get; init; } = "adamw";

        [CommandOption("--weight-decay <WD>")]
        [DefaultValue(1e-4)]
        [Description("Weight decay, as in `train`.")]
        public double WeightDecay { get; init; } = 1e-4;

        [CommandOption("--body-lr-factor <F>")]
        [DefaultValue(0.1)]
        [Description("--stage 2: body learning rate = head rate × F.")]
        public double BodyLrFactor { get; init; } = 0.1;

        [CommandOption("--unfreeze <N>")]
        [Description("--stage 2: unfreeze the top N layer groups, the head counting as one (default 2).")]
        public int? Unfreeze { get; init; }

        [CommandOption("--head <KIND>")]
        [DefaultValue("linear")]
        [Description("linear or mlp.")]
        public string Head { get; init; } = "linear";

        [CommandOption("--augment <KIND>")]
        [DefaultValue("standard")]
        [Description("finetune augmentation: standard or none.")]
        public string Augment { get; init; } = "standard";

        [CommandOption("--seed <N>")]
        [DefaultValue(0)]
        [Description("Seed of the data order, augmentation, head initialisation, dropout and the random weights of --weights none.")]
        public int Seed { get; init; }

        [CommandOption("--plot <FILE>")]
        [Description("The curve as a PNG (default: lr-find.png; 'none' to skip).")]
        public string? Plot { get; init; }

        public override ValidationResult Validate() => RequireModelAndData();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        TorchRuntime.ParseDevice(settings.Device);
        // The training flags mean here what they mean to `transfer train`: parse them the same way.
        var options = TrainCommand.ToOptions(new TrainCommand.Settings
        {
            Mode = settings.Mode, BatchSize = settings.BatchSize, Optimizer = settings.Optimizer, WeightDecay = settings.WeightDecay,
            BodyLrFactor = settings.BodyLrFactor, Unfreeze = settings.Unfreeze, Head = settings.Head, Augment = settings.Augment, Seed = settings.Seed,
            Workers = settings.Workers, OnBadImage = settings.OnBadImage, HeadSolver = "epochs",
        }) with { Device = settings.Device };
        var finder = new LearningRateFinderOptions { StartLearningRate = settings.StartLr, EndLearningRate = settings.EndLr, Steps = settings.Steps, Stage = settings.Stage };
        var data = ImageDataset.Open(settings.Data);
        using var source = settings.OpenSource(data, settings.Seed);
        var bad = new BadImageLog();
        var run = new TrainRunOptions { Progress = new WorkflowConsole.ProgressLine(), BadImages = bad };
        if (!settings.Json)
            ConsoleUi.Err.MarkupLine($"learning-rate range test of [bold]{Markup.Escape(source.Description)}[/] on {data.Count} images, mode {options.Mode}"
                + (options.Mode == TrainMode.FineTune ? $" stage {finder.Stage}" : "") + $", {finder.StartLearningRate:G2} → {finder.EndLearningRate:G2} over {finder.Steps} steps");
        var result = LearningRateFinder.Run(source, data, options, finder, run, cancellation);
        string? plot = settings.Plot is "none" ? null : settings.Plot ?? "lr-find.png";
        if (plot is not null) result.SavePlot(plot, Path.GetFileName(settings.Data.TrimEnd('/', '\\')));
        if (settings.Json)
        {
            Json.Print(new
            {
                Model = source.Description, Data = data.Origin, Mode = options.Mode, Stage = options.Mode == TrainMode.FineTune ? finder.Stage : 1,
                result.SuggestedLearningRate, SuggestionRule = LearningRateFinderResult.Rule, result.SteepestLearningRate, result.Diverged,
                Steps = result.LearningRates.Count, result.Seconds, Plot = plot, result.LearningRates, result.Losses, result.SmoothedLosses,
                BadImages = WorkflowConsole.BadImagesJson(bad),
            });
            return 0;
        }
        WorkflowConsole.ReportBadImages(bad);
        AnsiConsole.MarkupLine($"suggested learning rate [bold]{result.SuggestedLearningRate:G2}[/] (fastai's valley rule); steepest descent at {result.SteepestLearningRate:G2}; "
            + $"{result.LearningRates.Count} steps{(result.Diverged ? ", stopped when the loss diverged" : "")}, {result.Seconds:F0}s");
        if (plot is not null) AnsiConsole.MarkupLine($"wrote {Markup.Escape(plot)}");
        return 0;
    }
}
