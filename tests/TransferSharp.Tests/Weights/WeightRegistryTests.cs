using TransferSharp.Vision.Preprocessing;
using TransferSharp.Vision.Zoo;
using TransferSharp.Weights;
using Xunit;

namespace TransferSharp.Tests.Weights;

/// <summary>The weight tags built from pretrained_weights.json.</summary>
[Trait("Category", "Weights")]
public class WeightRegistryTests
{
    [Fact]
    public void Every_tag_of_the_json_is_registered_except_timms_mobilenetv2()
    {
        var all = WeightRegistry.AllRegistered;
        Assert.Equal(16, all.Count(t => t.Source == WeightSource.TorchVision));
        Assert.Equal(70, all.Count(t => t.Source == WeightSource.Timm)); // 71 timm entries (12 of them ViT and DINOv2) minus mobilenetv2_100
        Assert.DoesNotContain(all, t => t.SourceArchitecture == "mobilenetv2_100");
        Assert.All(all.Where(t => t.Source != WeightSource.Local), t => Assert.NotEmpty(t.Files)); // bundled tags (resnet18_cntk) have a local file instead
    }

    [Fact]
    public void Resnet50_defaults_to_torchvisions_best_and_finds_tags_by_any_spelling()
    {
        Assert.Equal("IMAGENET1K_V2", WeightRegistry.Default("resnet50")!.Tag);
        Assert.Equal("IMAGENET1K_V2", WeightRegistry.Default("ResNet50")!.Tag); // Keras alias
        foreach (var name in new[] { "imagenet", "default", "DEFAULT", "pretrained", "true" })
            Assert.Equal("IMAGENET1K_V2", WeightRegistry.Get("resnet50", name).Tag);
        Assert.Equal("IMAGENET1K_V1", WeightRegistry.Get("resnet50", "imagenet1k_v1").Tag);
        Assert.Equal("IMAGENET1K_V1", WeightRegistry.Get("resnet50", "resnet50.IMAGENET1K_V1").Tag);
        Assert.Equal("a1h_in1k", WeightRegistry.Get("resnet50", "A1H_IN1K").Tag);
        Assert.Equal("resnet50.tv_in1k", WeightRegistry.Find("resnet50.tv_in1k")!.Name);

        var tags = WeightRegistry.For("resnet50");
        Assert.Equal("IMAGENET1K_V2", tags[0].Tag);
        Assert.Equal(2 + 18, tags.Count);
        var e = Assert.Throws<UnknownWeightsException>(() => WeightRegistry.Get("resnet50", "imagenet22k"));
        Assert.Contains("IMAGENET1K_V1", e.Message);
    }

    [Fact]
    public void Torchvision_tags_carry_url_hash_preprocessing_accuracy_and_labels()
    {
        var v1 = WeightRegistry.Get("resnet50", "IMAGENET1K_V1");
        Assert.Equal("https://download.pytorch.org/models/resnet50-0676ba61.pth", v1.Url);
        Assert.Equal("0676ba61", v1.Files[0].Sha256Prefix);
        Assert.Equal(76.13, v1.Top1);
        Assert.Equal(92.862, v1.Top5);
        Assert.Equal(25557032, v1.ParameterCount);
        Assert.Equal(1000, v1.Labels.Count);
        Assert.Equal("tench", v1.Labels[0]);
        Assert.Equal(256, v1.Preprocessing.ResizeSize);
        Assert.Equal(224, v1.Preprocessing.CropSize);
        Assert.Equal(Interpolation.Bilinear, v1.Preprocessing.Interpolation);
        Assert.Equal([0.485, 0.456, 0.406], v1.Preprocessing.Mean);
        Assert.Equal(232, WeightRegistry.Get("resnet50", "IMAGENET1K_V2").Preprocessing.ResizeSize);
    }

    [Fact]
    public void Inception_v3_torchvision_weights_normalise_with_one_half()
    {
        var tag = WeightRegistry.Default("inception_v3")!;
        Assert.Equal("IMAGENET1K_V1", tag.Tag);
        Assert.Equal([0.5, 0.5, 0.5], tag.Preprocessing.Mean);
        Assert.Equal([0.5, 0.5, 0.5], tag.Preprocessing.Std);
        Assert.Equal(342, tag.Preprocessing.ResizeSize);
        Assert.Equal(299, tag.Preprocessing.CropSize);
    }

    [Fact]
    public void Vgg16_features_only_tag_is_not_the_default_and_has_no_labels()
    {
        Assert.Equal("IMAGENET1K_V1", WeightRegistry.Default("vgg16")!.Tag);
        var features = WeightRegistry.Get("vgg16", "IMAGENET1K_FEATURES");
        Assert.True(features.FeaturesOnly);
        Assert.Empty(features.Labels);
        Assert.Null(features.Top1);
        Assert.Contains(WeightRegistry.For("vgg16"), t => t.Tag == "tv_in1k" && t.Source == WeightSource.Timm);
    }

    [Fact]
    public void Timm_tags_use_crop_pct_and_keep_the_legacy_url_as_fallback()
    {
        var a1h = WeightRegistry.Get("resnet50", "a1h_in1k");
        Assert.Equal(176, a1h.Preprocessing.CropSize);
        Assert.Equal(195, a1h.Preprocessing.ResizeSize); // floor(176 / 0.9)
        Assert.Equal(Interpolation.Bicubic, a1h.Preprocessing.Interpolation);
        Assert.Equal("https://huggingface.co/timm/resnet50.a1h_in1k/resolve/main/model.safetensors", a1h.Url);
        Assert.Null(a1h.Files[0].Sha256Prefix);
        Assert.Equal(2, a1h.Files.Count);
        Assert.Equal("apache-2.0", a1h.License);

        var tv = WeightRegistry.Get("resnet50", "tv_in1k");
        Assert.Equal("0676ba61", tv.Files[1].Sha256Prefix); // the torchvision file as fallback, with its hash
        Assert.Equal(25557032, tv.ParameterCount);
        // An older torchvision file that no torchvision tag uses gets no hash check (not verified by torchvision).
        var inception = WeightRegistry.Get("inception_v3", "tv_in1k");
        Assert.EndsWith("inception_v3_google-1a9a5a14.pth", inception.Files[1].Url);
        Assert.Null(inception.Files[1].Sha256Prefix);
    }

    [Fact]
    public void Tags_for_architectures_not_yet_in_the_zoo_are_registered_but_not_listed()
    {
        var all = WeightRegistry.AllRegistered;
        var xception = all.Single(t => t.Name == "xception.tf_in1k");
        Assert.Equal("legacy_xception", xception.SourceArchitecture);
        Assert.Equal(299, xception.Preprocessing.CropSize);
        Assert.Equal(333, xception.Preprocessing.ResizeSize); // floor(299 / 0.8975)
        Assert.Contains(all, t => t.Name == "mobilenet_v1.ra4_e3600_r224_in1k");
        var in21k = all.Single(t => t.Name == "resnetv2_50x1_bit.goog_in21k");
        Assert.Equal(21843, in21k.NumClasses);
        Assert.Equal("class 5", in21k.Labels[5]);
        Assert.Equal(21843, in21k.Labels.Count);

        foreach (var (arch, primary) in new[] { ("xception", "tf_in1k"), ("inception_resnet_v2", "tf_in1k"), ("resnetv2_50x1_bit", "goog_distilled_in1k"), ("resnetv2_101x1_bit", "goog_in21k_ft_in1k") })
        {
            if (ModelZoo.Contains(arch))
            {
                Assert.Equal(primary, WeightRegistry.Default(arch)!.Tag);
                Assert.NotEmpty(WeightRegistry.For(arch));
            }
            else
            {
                Assert.Empty(WeightRegistry.For(arch));
                Assert.Null(WeightRegistry.Default(arch));
            }
        }
        Assert.All(WeightRegistry.All, t => Assert.True(ModelZoo.Contains(t.Architecture)));
    }

    [Fact]
    public void Every_zoo_model_with_weights_has_a_default_whose_preprocessing_is_sane()
    {
        foreach (var entry in ModelZoo.Entries)
        {
            var tags = WeightRegistry.For(entry.Name);
            if (tags.Count == 0) continue;
            var d = WeightRegistry.Default(entry.Name);
            Assert.NotNull(d);
            Assert.Equal(d, tags[0]);
            Assert.All(tags, t =>
            {
                Assert.InRange(t.Preprocessing.CropSize, 64, 600);
                Assert.True(t.Preprocessing.ResizeSize >= t.Preprocessing.CropSize, t.Name);
                Assert.Equal(3, t.Preprocessing.Mean.Count);
            });
        }
        Assert.NotEmpty(WeightRegistry.For("densenet121"));
    }

    [Fact]
    public void Registered_local_tags_can_become_the_default_and_go_away_again()
    {
        var tag = new WeightTag
        {
            Architecture = "resnet18",
            Tag = "test_local",
            Source = WeightSource.Local,
            LocalFile = () => "/nonexistent/resnet18.safetensors",
            Preprocessing = Preprocessing.ImageNet,
            Labels = ClassLabels.ImageNet1k,
        };
        try
        {
            WeightRegistry.Register(tag, makeDefault: true);
            Assert.Same(tag, WeightRegistry.Default("resnet18"));
            Assert.Same(tag, WeightRegistry.Get("resnet18", "TEST_LOCAL"));
        }
        finally
        {
            Assert.True(WeightRegistry.Unregister("resnet18.test_local"));
        }
        Assert.Equal("IMAGENET1K_V1", WeightRegistry.Default("resnet18")!.Tag);
        Assert.Throws<ArgumentException>(() => WeightRegistry.Register(tag with { LocalFile = null }));
    }
}
